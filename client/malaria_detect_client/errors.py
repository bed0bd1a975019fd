"""What can go wrong, each with the exit status a script can test (documented in `malaria-detect --help`)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the server or the network failed: unreachable, a 5xx, an answer that makes no sense
EXIT_USAGE = 2  # bad arguments or paths (argparse uses 2 as well)
EXIT_AUTH = 3  # not signed in, wrong password, a token or an account the server refuses
EXIT_REFUSED = 4  # the server refused what was sent: a rejected file, an unknown patient or sample
EXIT_CLASSIFICATION = 5  # classification failed for every image, or did not finish in time

EXIT_CODES_HELP = """exit status:
  0  success
  1  the server or the network failed (unreachable, server error)
  2  usage: bad arguments or paths
  3  authentication: not signed in, wrong password, access refused
  4  refused by the server: a rejected file, an unknown patient or sample
  5  classification failed, or did not finish within --timeout"""


class ClientError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    exit_code = EXIT_USAGE


class AuthError(ClientError):
    exit_code = EXIT_AUTH


class RefusedError(ClientError):
    exit_code = EXIT_REFUSED


class ClassificationError(ClientError):
    exit_code = EXIT_CLASSIFICATION
