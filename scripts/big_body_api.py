"""A hostile stand-in for the Parliament API, for measuring pqwatch's memory under huge bodies.

The list endpoint returns N questions answered today (contract shape); every single-question
request gets a valid JSON record whose answerText is SIZE_MB megabytes. With --chunked the
body is sent without Content-Length (the end is the connection's close), so a client cannot
refuse it up front and must cut it off as it streams in.

Usage: python3 scripts/big_body_api.py PORT [--records N] [--size-mb SIZE_MB] [--chunked]
Prints "ready" once it accepts connections; runs until killed. Used by docs/reliability.md.
"""
import datetime
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = sys.argv[1:]
PORT = int(ARGS[0])
RECORDS = int(ARGS[ARGS.index("--records") + 1]) if "--records" in ARGS else 8
SIZE_MB = int(ARGS[ARGS.index("--size-mb") + 1]) if "--size-mb" in ARGS else 50
CHUNKED = "--chunked" in ARGS
TODAY = datetime.date.today().isoformat()


def question(i, answer):
    return {
        "id": i, "uin": str(10000 + i), "house": "Commons", "heading": "Prisons: Staff",
        "questionText": "To ask the Secretary of State for Justice, how many prison officers.",
        "dateTabled": TODAY + "T00:00:00", "dateAnswered": TODAY + "T00:00:00",
        "answeringBodyId": 54, "answeringBodyName": "Ministry of Justice",
        "answerIsHolding": False, "answerIsCorrection": False, "answerText": answer,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/api/writtenquestions/questions":
            body = json.dumps({"totalResults": RECORDS, "results": [
                {"value": question(i, "<p>Prison officers: a very long answer</p>"), "links": []}
                for i in range(1, RECORDS + 1)
            ] if "skip=0" in self.path else []}).encode()
            self.reply(body)
        elif path.startswith("/api/writtenquestions/questions/"):
            i = int(path.rsplit("/", 1)[1])
            head = json.dumps({"value": question(i, "@")}).encode()
            before, after = head.split(b"@")
            filler = b"<p>" + b"9" * (1024 * 1024 - 7) + b"</p>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if CHUNKED:
                self.send_header("Connection", "close")
            else:
                self.send_header("Content-Length", str(len(before) + len(after) + SIZE_MB * len(filler)))
            self.end_headers()
            try:
                self.wfile.write(before)
                for _ in range(SIZE_MB):
                    self.wfile.write(filler)
                self.wfile.write(after)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if CHUNKED:
                self.close_connection = True
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
