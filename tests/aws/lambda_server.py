"""A stand-in for AWS Lambda's Invoke API on 127.0.0.1 that checks every call's SigV4 signature
with botocore (the AWS SDK for Python's own signer) and answers canned results.

    python3 lambda_server.py ACCESS_KEY_ID SECRET_ACCESS_KEY REGION

Prints one JSON line {"port"}, then serves until its stdin closes. A call must be
POST /2015-03-31/functions/{name}/invocations signed for `lambda` in REGION with the key given,
dated within 5 minutes; otherwise 403 as Lambda answers it. The functions (by name, or the
last part of an ARN):

    echo       the event as the result's JSON body (200, application/json)
    plain      {"hello": "world"}, no statusCode (payload 2.0's shortcut)
    binary     the request body back, base64 (isBase64Encoded), application/octet-stream
    cookies    cookies, headers and multiValueHeaders
    fails      a function error (X-Amz-Function-Error: Unhandled)
    malformed  a result that is no proxy response
    slow       waits 3 s, then as echo
    (other)    404 ResourceNotFoundException
GET /calls answers how many calls had a valid signature and how many did not.
"""

import base64
import datetime
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY, SECRET_KEY, REGION = sys.argv[1:4]
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)
calls = {"verified": 0, "refused": 0}
lock = threading.Lock()


def verify(handler, body):
    """Why the signature does not hold, or None."""
    match = AUTH.match(handler.headers.get("authorization", ""))
    if not match:
        return "missing or malformed Authorization"
    key, date, region, service, signed, signature = match.groups()
    if key != ACCESS_KEY:
        return "unknown access key"
    if (region, service) != (REGION, "lambda"):
        return f"wrong scope {region}/{service}"
    amz_date = handler.headers.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return "scope date is not the request date"
    at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    if abs((datetime.datetime.now(datetime.timezone.utc) - at).total_seconds()) > 300:
        return "request time too far from now"
    # The request as received, with exactly the headers the signature names.
    headers = {}
    for name in signed.split(";"):
        values = handler.headers.get_all(name)
        if not values:
            return f"signed header {name} missing"
        headers[name] = ",".join(values)
    url = f"http://{handler.headers['host']}{handler.path}"
    request = AWSRequest(method=handler.command, url=url, headers=headers, data=body)
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", REGION)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != signature:
        return "signature mismatch"
    return None


def result(name, event):
    if name == "echo" or name == "slow":
        if name == "slow":
            time.sleep(3)
        return 200, {}, {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(event),
        }
    if name == "plain":
        return 200, {}, {"hello": "world"}
    if name == "binary":
        raw = event.get("body") or ""
        data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        return 200, {}, {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(data).decode(),
            "isBase64Encoded": True,
        }
    if name == "cookies":
        out = {
            "statusCode": 201,
            "headers": {"x-single": "one"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "body": "made",
        }
        if event.get("version") == "2.0":
            out["cookies"] = ["session=1; HttpOnly", "theme=dark"]
        return 200, {}, out
    if name == "fails":
        return 200, {"X-Amz-Function-Error": "Unhandled"}, {
            "errorMessage": "boom",
            "errorType": "Error",
            "stackTrace": [],
        }
    if name == "malformed":
        return 200, {}, {"statusCode": 200, "headers": "not an object"}
    return 404, {"x-amzn-ErrorType": "ResourceNotFoundException"}, {
        "Type": "User",
        "message": f"Function not found: {name}",
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self.answer(200, {}, calls)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        refused = verify(self, body)
        with lock:
            calls["refused" if refused else "verified"] += 1
        if refused:
            return self.answer(
                403,
                {"x-amzn-ErrorType": "InvalidSignatureException"},
                {"message": refused},
            )
        match = re.fullmatch(r"/2015-03-31/functions/([^/]+)/invocations", self.path)
        if not match:
            return self.answer(404, {}, {"message": "unknown path"})
        name = urllib.parse.unquote(match.group(1)).split(":")
        # A name, or an ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
        name = name[6] if name[0] == "arn" else name[0]
        status, headers, payload = result(name, json.loads(body))
        self.answer(status, headers, payload)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps({"port": server.server_address[1]}), flush=True)
sys.stdin.read()
server.shutdown()
