"""Netlink sockets bound to a network namespace given by path (``CNI_NETNS``).

A netlink socket belongs to the namespace its creator was in when it was opened, so
the plugin steps into the pod's namespace only for the instant of ``socket()``, then
steps back. pyroute2's own ``netns=`` support spawns a helper process per socket and
creates missing namespaces; both are wrong for a CNI plugin (slow, and DEL must never
create a namespace that is gone).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from pyroute2.iproute.linux import IPRoute

from cni.rtnl import Rtnl

Socket = TypeVar("Socket", IPRoute, Rtnl)

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace fd: its CLONE_NEW* type (linux/nsfs.h)


class NamespaceGone(Exception):
    """The pod's network namespace no longer exists (DEL and GC treat this as done)."""


# libc's setns(2), looked up once: each ADD steps in and out of the pod's namespace.
_SETNS = ctypes.CDLL(None, use_errno=True).setns


def _setns(fd: int) -> None:
    if _SETNS(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class NotANamespace(NamespaceGone):
    """The path exists but is no network namespace: a file (an unmounted namespace's mount
    point looks like this), a directory, another kind of namespace."""


def open_netns(path: str) -> int:
    """An fd of the network namespace at ``path``.

    Raises :class:`NamespaceGone` if nothing is there, :class:`NotANamespace` if what is
    there is no network namespace.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NamespaceGone(path) from exc
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:  # ENOTTY: not a namespace file at all
        kind = None
    if kind != CLONE_NEWNET:
        os.close(fd)
        raise NotANamespace(path)
    return fd


def is_own_namespace(netns_fd: int) -> bool:
    """True when ``netns_fd`` is the namespace this process runs in: the node's own."""
    theirs, ours = os.fstat(netns_fd), os.stat("/proc/self/ns/net")
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


@contextmanager
def opened_in(netns_fd: int, opener: Callable[[], Socket]) -> Iterator[Socket]:
    """A netlink socket (``opener()``) inside the namespace ``netns_fd``; this process
    stays where it is."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(netns_fd)
        except OSError as exc:  # the path exists but is no namespace (a stale bind mount)
            raise NamespaceGone(str(exc)) from exc
        try:
            ipr = opener()
        finally:
            _setns(home)
    finally:
        os.close(home)
    try:
        yield ipr
    finally:
        ipr.close()


def netlink_in(netns_fd: int) -> AbstractContextManager[IPRoute]:
    """pyroute2's IPRoute in the namespace: attachments (links, addresses)."""
    return opened_in(netns_fd, IPRoute)


def rtnl_in(netns_fd: int) -> AbstractContextManager[Rtnl]:
    """A plain rtnetlink socket in the namespace: shaping (cni.rtnl says why)."""
    return opened_in(netns_fd, Rtnl)


@contextmanager
def host_netlink() -> Iterator[IPRoute]:
    """An IPRoute socket in the namespace the runtime started the plugin in (the node's)."""
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()
