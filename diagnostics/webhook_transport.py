"""One webhook request, sent safely: the receiver's address is checked and the connection pinned to it.

Server-side request forgery (docs/webhooks.md, "SSRF"): a reviewer chooses the URL, and the request leaves
from inside the product's network, so the URL must never reach the product's own services (the database,
Redis, a cloud's metadata endpoint at 169.254.169.254). The host is resolved here, every address it
resolves to must be public, and the request goes to the address checked, never to a name resolved again
(DNS rebinding cannot swap it in between). Redirects are not followed, timeouts are short, and the
receiver's answer is its status code alone: its body is never read.

No Django here: settings come in as arguments (the allowed networks, the timeout).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError, TimeoutError

DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix
NOT_PUBLIC = "events are only sent to public addresses (not loopback, private, link-local or reserved ones)"


class ReceiverRefused(Exception):
    """This URL may not receive events; the message is for the lab (it names no internal address)."""


class ReceiverUnreachable(Exception):
    """The request did not get an answer; the message is short and for the lab."""


@dataclass(frozen=True)
class Receiver:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    address: str  # the address checked, which the connection goes to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def address_refusal(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why events may not go to this address ("loopback", ...), or None when it is public or allowed."""
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (::ffff:127.0.0.1, 6to4, NAT64's 64:ff9b::/96, Teredo's client)
        # reaches that IPv4 address: judge it.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded, allowed)
    for reason, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    ):
        if flagged:
            return reason
    return None


def receiver_resolve(url: str, *, allowed: Sequence[IPNetwork] = ()) -> Receiver:
    """The receiver of `url` with the address to connect to, or ReceiverRefused with the reason."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ReceiverRefused("The URL is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ReceiverRefused("Only http:// and https:// URLs can receive events.")
    if parts.username is not None or parts.password is not None:
        raise ReceiverRefused("The URL must not carry a user name or password: events are signed instead.")
    host = parts.hostname
    if not host:
        raise ReceiverRefused("The URL has no host.")
    port = port or DEFAULT_PORTS[scheme]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise ReceiverRefused(f"The host {host} cannot be found.") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is dropped
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ReceiverRefused(f"The host {host} cannot be found.")
    # Every address must pass: a name that also resolves to an internal address is refused whichever is used.
    for address in addresses:
        reason = address_refusal(address, allowed)
        if reason is not None:
            raise ReceiverRefused(f"The host {host} is at an address that is {reason}: {NOT_PUBLIC}.")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return Receiver(scheme=scheme, host=host, port=port, target=target, address=str(addresses[0]))


def receiver_post(
    receiver: Receiver, *, body: bytes, headers: dict[str, str], timeout: float, ca_bundle: str | None = None
) -> int:
    """POST `body` to the receiver's checked address; returns the status code (a redirect is not followed).
    `ca_bundle`: a PEM file of the authorities an https receiver's certificate is checked against (public
    ones, certifi's, when None)."""
    options: dict = {}
    if receiver.scheme == "https":
        # TLS checks the certificate against the host's name, though the connection goes to its address.
        options = {
            "server_hostname": receiver.host,
            "assert_hostname": receiver.host,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle or certifi.where(),
        }
    pool_class = urllib3.HTTPSConnectionPool if receiver.scheme == "https" else urllib3.HTTPConnectionPool
    pool = pool_class(
        receiver.address,
        receiver.port,
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        retries=False,
        maxsize=1,
        **options,
    )
    try:
        response = pool.urlopen(
            "POST",
            receiver.target,
            body=body,
            headers={**headers, "Host": receiver.host_header},
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,  # the answer's body is never read: a receiver cannot make us download
        )
        return response.status
    except SSLError:
        raise ReceiverUnreachable("The receiver's TLS certificate could not be verified.") from None
    except NewConnectionError:  # before TimeoutError: urllib3 makes it a subclass of ConnectTimeoutError
        raise ReceiverUnreachable("The connection to the receiver was refused or failed.") from None
    except TimeoutError:
        raise ReceiverUnreachable(f"The receiver did not answer within {timeout:g} s.") from None
    except (HTTPError, OSError):
        raise ReceiverUnreachable("The connection to the receiver failed.") from None
    finally:
        pool.close()
