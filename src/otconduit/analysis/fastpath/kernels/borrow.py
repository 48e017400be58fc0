"""Borrowed arrays: the kernels' way around reference counting in their hot loops.

numba counts references to every array it hands from one variable to another: each
inlined helper that takes an array, each view, increments and decrements an atomic
counter, and in a loop whose branches defeat numba's pruning of those pairs that was
most of the kernels' time (measured: about 60 atomic operations per message). A pass
kernel runs while its caller holds every array it was given, so inside the kernel the
counting protects nothing: :func:`borrow` gives the same array without an owner
(meminfo NULL), on which numba's reference counting is a null test. A borrowed array,
and any view of it, must not outlive the call that borrowed it (never returned, never
stored).
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from otconduit.jit import njit


@intrinsic
def borrow(typingctx, arr):
    """``arr`` itself, without its owner (see the module docstring)."""
    if not isinstance(arr, types.Array):
        return None
    sig = arr(arr)

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        out = context.make_array(arr)(context, builder)
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        out.nitems = src.nitems
        out.itemsize = src.itemsize
        out.data = src.data
        out.shape = src.shape
        out.strides = src.strides
        return out._getvalue()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def block_arrays(b):
    """The columns of a ``Block`` bundle, borrowed."""
    return (
        borrow(b.buf), borrow(b.ts), b.first_frame, borrow(b.ok), borrow(b.src),
        borrow(b.dst), borrow(b.sport), borrow(b.dport), borrow(b.vlan), borrow(b.seq),
        borrow(b.flags), borrow(b.poff), borrow(b.plen), borrow(b.iplen), borrow(b.smac),
        borrow(b.dmac), borrow(b.done),
    )  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def slot_arrays(sl):
    """The arrays of a ``Slots`` bundle, borrowed."""
    return (
        borrow(sl.tk1), borrow(sl.tk2), borrow(sl.tv), borrow(sl.ports), borrow(sl.st),
        borrow(sl.qm), borrow(sl.raw), borrow(sl.carry), borrow(sl.init),
        borrow(sl.born_ports), borrow(sl.known_ports), borrow(sl.freelist), borrow(sl.bufs),
        borrow(sl.ctl),
    )  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def shape_arrays(sh):
    """The arrays of a ``Shapes`` bundle, borrowed."""
    return borrow(sh.th), borrow(sh.tinfo), borrow(sh.tnorm), borrow(sh.norm)


@njit(cache=True, nogil=True, inline="always")
def out_arrays(out):
    """The arrays of an ``Out`` bundle, borrowed."""
    return (
        borrow(out.xo), borrow(out.lh), borrow(out.lv), borrow(out.cnt), borrow(out.slowed),
        borrow(out.miss), borrow(out.mb), borrow(out.born), borrow(out.probs),
    )  # fmt: skip
