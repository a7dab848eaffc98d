"""`mlserver start <folder>`, with the gRPC port bound exclusively.

grpcio binds its servers with SO_REUSEPORT by default, so a second MLServer on a port another one holds starts
"successfully" and the kernel splits the connections between the two. The tests and the lab start MLServer on
ports chosen at random and must learn when a port is taken (and start again on another): this turns that option
off, so a taken gRPC port fails the start as a taken REST port does. Everything else is MLServer 1.7.1's own CLI.

    .tools/venv/bin/python mlserver/serve.py start mlserver/
"""

import sys

from mlserver.cli import main
from mlserver.grpc import server as grpc_server

_options = grpc_server.GRPCServer._get_options


def _exclusive_options(self):  # type: ignore[no-untyped-def]
    return [*_options(self), ("grpc.so_reuseport", 0)]


grpc_server.GRPCServer._get_options = _exclusive_options

if __name__ == "__main__":
    sys.exit(main())
