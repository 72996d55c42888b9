"""The lab's components, one per module, each a `make_app(ctx) -> web.Application` factory."""
