"""The same server written with Python's standard library, for `make bench`.

socketserver.ForkingTCPServer forks a child per connection, as step g does;
the child reads the request once and answers with the same bytes as the
workshop's servers (no Content-Length: the body ends when the connection
closes). The parent collects its children with waitpid() between requests.
Like the servers, it prints `Serving HTTP on port N ...` first, and takes
--port N (0 lets the kernel choose) and --host ADDR.

Run it with Debian's /usr/bin/python3:
    /usr/bin/python3 bench/python_forking_server.py --port 0
"""

import argparse
import socketserver
import sys

HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\n\r\nHello, World!\n"


class HelloHandler(socketserver.BaseRequestHandler):
    """One connection, in the child: one read, one answer."""

    def handle(self) -> None:
        self.request.recv(1024)
        self.request.sendall(HTTP_RESPONSE)


class Server(socketserver.ForkingTCPServer):
    # The same queue of finished handshakes as step g; the standard library's
    # default is 5. And let a restarted server bind its port at once.
    request_queue_size = 1024
    allow_reuse_address = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port, 0 to let the kernel choose")
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 address to bind")
    options = parser.parse_args()
    with Server((options.host, options.port), HelloHandler) as server:
        print(f"Serving HTTP on port {server.server_address[1]} ...", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
