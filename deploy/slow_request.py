"""Hold one request open while its server is told to stop, then print the answer's status.

Sends POST /query's headers and the first half of its body, waits HOLD seconds (the test
stops the server meanwhile), sends the rest and reads the answer: a server that drains answers
200; one that drops in-flight requests closes the socket. Standard library only, so it runs in
the livedata image. Usage: python slow_request.py HOST PORT HOLD [AUTHORIZATION]
"""

import http.client
import json
import sys
import time

host, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
body = json.dumps({"query": "countries_by_region", "params": {"region": "Oceania"}}).encode()
conn = http.client.HTTPConnection(host, port, timeout=30)
conn.putrequest("POST", "/query")
conn.putheader("Content-Type", "application/json")
conn.putheader("Content-Length", str(len(body)))
conn.putheader("Cache-Control", "no-cache")
if len(sys.argv) > 4:
    conn.putheader("Authorization", sys.argv[4])
conn.endheaders()
conn.send(body[: len(body) // 2])
print("sent half", flush=True)
time.sleep(hold)
try:
    conn.send(body[len(body) // 2 :])
    response = conn.getresponse()
    rows = json.loads(response.read())["meta"]["rows"] if response.status == 200 else None
    print(f"status {response.status} rows {rows}", flush=True)
except OSError as exc:
    print(f"failed {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
