"""A client as students wrote them against the course guide's code, kept in their style.

It forges its token with the guide's secret instead of logging in (or sends none, with
GUIDE_NO_TOKEN=1, for a gateway whose check was commented out), reads a fresh key
twice (a miss, then a hit), invalidates it in the cache, reads the cache's stats and the
worker's task list, and prints what it saw. Exits 1 on the first surprise. The only
change: the addresses come from the environment (LB_URL, CACHE_URL, WORKER_URL).
"""

import json
import os
import sys
import urllib.error
import urllib.request

import jwt

LB = os.environ.get("LB_URL", "http://127.0.0.1:8000")
CACHE = os.environ.get("CACHE_URL", "http://127.0.0.1:5004")
WORKER = os.environ.get("WORKER_URL", "http://127.0.0.1:5005")
TOKEN = None if os.environ.get("GUIDE_NO_TOKEN") else jwt.encode({"user": "student"}, "secret")


def call(method, url, body=None):
    headers = {"Authorization": TOKEN} if TOKEN else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def expect(what, got, wanted):
    print(f"{what}: {got}")
    if got != wanted:
        print(f"  expected {wanted}")
        sys.exit(1)


status, first = call("GET", f"{LB}/data?key=student-1")
expect("first read", (status, first.get("cached")), (200, False))
status, second = call("GET", f"{LB}/data?key=student-1")
expect("second read", (status, second["cached"]), (200, True))
print("served by", first["gateway_id"], "then", second["gateway_id"])
expect("invalidate", call("DELETE", f"{CACHE}/cache/student-1")[0], 204)
status, third = call("GET", f"{LB}/data?key=student-1")
expect("read after invalidation", (status, third["cached"]), (200, False))
status, stats = call("GET", f"{CACHE}/cache/stats")
expect("cache stats", (status, stats["hits"], stats["misses"]), (200, 1, 2))
status, queued = call("POST", f"{LB}/longtask", {"task": "report"})
expect("long task", status, 202)
status, tasks = call("GET", f"{WORKER}/tasks")
expect("newest task", (status, tasks["tasks"][0]["task_id"]), (200, queued["task_id"]))
status, processed = call("GET", f"{LB}/process")
expect("process", (status, processed["service_id"]), (200, "microservice"))
print("all as the guide's code answers")
