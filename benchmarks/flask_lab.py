"""The lab's Flask deployment, reconstructed; used only by the benchmarks, never by labsim.

The lab's own code is not available to us. This is our own rebuild of it from the student's
write-up and the course guide's design, kept as close to the lab as written as that
description allows, so that its cost can be measured on this machine (`lab_deployment.py`,
`twin.py`) and a labsim scenario calibrated against it:

    python benchmarks/flask_lab.py COMPONENT [PORT]

    load_balancer  8000  round-robin (itertools.cycle) over the gateways 5000, 5003, 5006;
                         forwards with module-level `requests.get`/`requests.post` (no
                         Session: a new TCP connection per forwarded request)
    gateway        5000  the lab runs three: 5000, 5003, 5006; POST /login (JWT, HS256,
                         keyed by $FLASK_LAB_SECRET, shared by all three),
                         GET /data (cache, else database then cache), POST /longtask (worker)
    cache          5004  a dict of key -> (value, time set), entries older than CACHE_TTL
                         read as None
    database       5002  GET /db answers after `time.sleep(2)`
    microservice   5001  GET /process
    worker         5005  POST /task starts a thread that sleeps 5 s

Every component is a Flask app on the development server, `app.run(port=..., debug=True)`
as in the lab: threaded (one thread per connection), with Werkzeug's reloader (a parent
process that runs the serving child and restarts it on code changes) and its debugger.
Every component listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import itertools
import os
import sys
import threading
import time
from functools import wraps

import jwt
import requests
from flask import Flask, jsonify, request

GATEWAYS = ["http://127.0.0.1:5000", "http://127.0.0.1:5003", "http://127.0.0.1:5006"]
CACHE_URL = "http://127.0.0.1:5004/cache"
DATABASE_URL = "http://127.0.0.1:5002/db"
WORKER_URL = "http://127.0.0.1:5005/task"
# The gateways sign and check tokens with this, made per deployment by lab_deployment.py.
# (The course guide hard-codes "secret"; any key costs the same HS256 work, and the lab's
# own script only uses the token it is given.)
SECRET_ENV = "FLASK_LAB_SECRET"
CACHE_TTL = 30  # seconds
DEFAULT_PORTS = {
    "load_balancer": 8000,
    "gateway": 5000,
    "cache": 5004,
    "database": 5002,
    "microservice": 5001,
    "worker": 5005,
}


def load_balancer(port):
    app = Flask(__name__)
    gateways = itertools.cycle(GATEWAYS)

    @app.route("/<path:path>", methods=["GET", "POST"])
    def forward(path):
        url = f"{next(gateways)}/{path}"
        headers = dict(request.headers)
        try:
            if request.method == "POST":
                response = requests.post(url, json=request.get_json(), headers=headers)
            else:
                response = requests.get(url, headers=headers)
            return jsonify(response.json()), response.status_code
        except requests.exceptions.RequestException as e:
            return jsonify({"error": str(e)}), 500

    app.run(port=port, debug=True)


def gateway(port):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ[SECRET_ENV]

    def token_required(f):
        @wraps(f)
        def decorated(*args, **kwargs):
            token = request.headers.get("Authorization")  # the raw token, no "Bearer "
            if not token:
                return jsonify({"error": "Missing token"}), 403
            try:
                jwt.decode(token, app.config["SECRET_KEY"], algorithms=["HS256"])
            except jwt.InvalidTokenError:
                return jsonify({"error": "Invalid token"}), 403
            return f(*args, **kwargs)

        return decorated

    @app.route("/login", methods=["POST"])
    def login():
        auth = request.get_json(silent=True) or {}
        if auth.get("username") == "user1" and auth.get("password") == "password123":
            payload = {
                "user": auth["username"],
                "exp": datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=30),
            }
            token = jwt.encode(payload, app.config["SECRET_KEY"], algorithm="HS256")
            return jsonify({"token": token})
        return jsonify({"error": "Invalid credentials"}), 401

    @app.route("/data", methods=["GET"])
    @token_required
    def data():
        cached = requests.get(f"{CACHE_URL}/my_data").json()
        if cached.get("value"):
            return jsonify({"cached": True, "data": cached["value"]})
        message = requests.get(DATABASE_URL).json()["message"]
        requests.post(f"{CACHE_URL}/my_data", json={"value": message})
        return jsonify({"cached": False, "data": message})

    @app.route("/longtask", methods=["POST"])
    @token_required
    def longtask():
        requests.post(WORKER_URL, json=request.json)
        return jsonify({"status": "Task queued"}), 202

    print(f"Starting API Gateway on port {port}")
    app.run(port=port, debug=True)


def cache(port):
    app = Flask(__name__)
    store = {}  # key -> (value, time it was set)

    @app.route("/cache/<key>", methods=["GET"])
    def get(key):
        entry = store.get(key)
        if entry is None or time.time() - entry[1] > CACHE_TTL:
            return jsonify({"value": None})
        return jsonify({"value": entry[0]})

    @app.route("/cache/<key>", methods=["POST"])
    def set_(key):
        store[key] = (request.json.get("value"), time.time())
        return jsonify({"status": "ok"})

    app.run(port=port, debug=True)


def database(port):
    app = Flask(__name__)

    @app.route("/db", methods=["GET"])
    def db():
        time.sleep(2)  # a slow query
        return jsonify({"message": "Fetched fresh data from DB"})

    app.run(port=port, debug=True)


def microservice(port):
    app = Flask(__name__)

    @app.route("/process", methods=["GET"])
    def process():
        return jsonify({"message": "Business logic executed"})

    app.run(port=port, debug=True)


def worker(port):
    app = Flask(__name__)

    def long_task(data):
        time.sleep(5)

    @app.route("/task", methods=["POST"])
    def task():
        threading.Thread(target=long_task, args=(request.json,)).start()
        return jsonify({"status": "Started"}), 202

    app.run(port=port, debug=True)


COMPONENTS = {
    "load_balancer": load_balancer,
    "gateway": gateway,
    "cache": cache,
    "database": database,
    "microservice": microservice,
    "worker": worker,
}


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2 or argv[0] not in COMPONENTS:
        print(f"usage: flask_lab.py {{{','.join(COMPONENTS)}}} [PORT]", file=sys.stderr)
        return 2
    if argv[0] == "gateway" and len(os.environ.get(SECRET_ENV, "")) < 32:
        print(f"flask_lab.py: set {SECRET_ENV} to 32 or more characters", file=sys.stderr)
        return 2
    port = int(argv[1]) if len(argv) == 2 else DEFAULT_PORTS[argv[0]]
    COMPONENTS[argv[0]](port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
