#!/usr/bin/env python3
"""tests/runtime/enhancer_server.py - a small OpenAI-compatible chat-completions server on 127.0.0.1, for
tests/runtime/test_prompt_enhancer.sh (the --prompt_enhancer client against the protocol, without a model).

    python3 tests/runtime/enhancer_server.py PORT_FILE

binds a free port (port 0), writes it to PORT_FILE and serves until killed; the system message of the last
valid request goes to PORT_FILE.system. Only POST /v1/chat/completions
exists (anything else: 404). A request is first checked against what the client must send (JSON body in
UTF-8; model; a system and a user message; temperature 0.7, top_p 0.8, seed 0, max_tokens, stream false):
a request that breaks it gets 400 with the reason, so the test sees it. Then the model name picks the answer:

    echo       200, content "Enhanced: " + the user message, raw UTF-8 (no Authorization header allowed)
    key        the same with every non-ASCII character as a \\u escape, but 401 unless the request has
               "Authorization: Bearer test-key"
    fail500    500 with an error body
    slow       the echo answer after 3 s
    garbage    200 with a body that is not JSON
    nocontent  200 with choices[0].message without content
    empty      200 with content "  \\n "
    badutf8    200 with a byte 0xff in the content
    huge       200 with a 2 MiB body
    other      404 "model does not exist", as vLLM answers
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def check_request(body):
    """The reason the request breaks the protocol, or None; and the parsed request."""
    try:
        req = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return "body is not JSON in UTF-8: %s" % e, None
    if not isinstance(req, dict) or not isinstance(req.get("model"), str):
        return "no model", None
    msgs = req.get("messages")
    if not (isinstance(msgs, list) and len(msgs) == 2 and [m.get("role") for m in msgs] == ["system", "user"]
            and all(isinstance(m.get("content"), str) and m["content"] for m in msgs)):
        return "messages must be a system and a user message: %r" % (msgs,), None
    want = {"temperature": 0.7, "top_p": 0.8, "seed": 0, "stream": False}
    for k, v in want.items():
        if req.get(k) != v or type(req.get(k)) is not type(v):
            return "%s is %r, want %r" % (k, req.get(k), v), None
    if not isinstance(req.get("max_tokens"), int) or req["max_tokens"] < 1:
        return "max_tokens is %r" % (req.get("max_tokens"),), None
    return None, req


def completion(content, ascii_only=False):
    """An OpenAI chat.completion answer (bytes) with this content."""
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }, ensure_ascii=ascii_only).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def reply(self, status, body, content_type="application/json"):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout case)
            pass

    def error(self, status, message):
        self.reply(status, json.dumps({"error": {"message": message, "code": status}}).encode())

    def do_GET(self):
        self.error(404, "only POST /v1/chat/completions")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/chat/completions":
            return self.error(404, "no route %s" % self.path)
        if self.headers.get("Content-Type") != "application/json":
            return self.error(400, "Content-Type is %r" % self.headers.get("Content-Type"))
        reason, req = check_request(body)
        if reason:
            return self.error(400, reason)
        model, prompt = req["model"], req["messages"][1]["content"]
        with open(self.server.system_file, "w", encoding="utf-8") as f:
            f.write(req["messages"][0]["content"])
        auth = self.headers.get("Authorization")
        if model == "echo":
            if auth is not None:
                return self.error(400, "unexpected Authorization header")
            return self.reply(200, completion("Enhanced: " + prompt))
        if model == "key":
            if auth != "Bearer test-key":
                return self.error(401, "invalid or missing API key")
            return self.reply(200, completion("Enhanced: " + prompt, ascii_only=True))
        if model == "fail500":
            return self.error(500, "the model crashed (test)")
        if model == "slow":
            time.sleep(3)
            return self.reply(200, completion("Enhanced: " + prompt))
        if model == "garbage":
            return self.reply(200, b"<html>not json {", "text/html")
        if model == "nocontent":
            return self.reply(200, b'{"choices": [{"index": 0, "message": {"role": "assistant"}}]}')
        if model == "empty":
            return self.reply(200, completion("  \n "))
        if model == "badutf8":
            return self.reply(200, completion("caf\u00e9").replace("caf\u00e9".encode(), b"caf\xff"))
        if model == "huge":
            return self.reply(200, completion("x" * (2 << 20)))
        return self.error(404, "The model `%s` does not exist." % model)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.system_file = sys.argv[1] + ".system"
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])  # the test sees the whole port number or nothing
    server.serve_forever()


if __name__ == "__main__":
    main()
