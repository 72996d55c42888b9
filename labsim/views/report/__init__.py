"""Views of a run's typed result: text (`text.py`), HTML with SVG charts (`html.py`,
`svg.py`); the JSON file is the result's own `as_dict()`. Each only reads the result."""
