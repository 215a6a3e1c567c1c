# walt-bench's stand-in for WalT's own soft-reboot fan-out, written from
# its description (docs/bench.md; WalT's server/walt/server/tools.py and
# nodes/netservice.py): one non-blocking socket per node, all on one poll
# loop; "MODE single\n<REQUEST>\n" in one send once the socket is
# writable; the reply read one byte at a time up to "\n"; each node's
# result kept by node. No history, no boot tracking: the fan-out alone.
#
# Usage: python3 walt_fanout.py OCTET NODES REQUEST
# Prints one line: "wall_us=W cpu_us=C ok=K failed=F", the loop's own
# wall and CPU time (user and system, this process), interpreter start
# not counted.
import errno
import resource
import selectors
import socket
import sys
import time

TIMEOUT = 15.0  # NODE_REQUEST_DELAY_SECS


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fanout(addrs, request):
    sel = selectors.DefaultSelector()
    msg = ("MODE single\n%s\n" % request).encode("ascii")
    results = {}
    for addr in addrs:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            results[addr] = errno.errorcode.get(err, str(err))
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE, [addr, b""])
    deadline = time.monotonic() + 2 * TIMEOUT
    while len(results) < len(addrs) and time.monotonic() < deadline:
        for key, events in sel.select(timeout=TIMEOUT):
            s, state = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                try:
                    s.send(msg)
                except OSError as e:
                    results[state[0]] = e.strerror
                    sel.unregister(s)
                    s.close()
                    continue
                sel.modify(s, selectors.EVENT_READ, state)
                continue
            try:
                c = s.recv(1)
            except OSError:
                c = None
            if c is None or c in (b"\n", b""):
                results[state[0]] = "Broken connection" if c is None else state[1].decode("ascii", "replace")
                sel.unregister(s)
                s.close()
            else:
                state[1] += c
    return results


def main():
    octet, nodes, request = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    addrs = [("127.%d.%d.%d" % (octet, (i + 1) >> 8, (i + 1) & 0xFF), 12346) for i in range(nodes)]
    c0, t0 = cpu(), time.monotonic()
    results = fanout(addrs, request)
    wall, used = time.monotonic() - t0, cpu() - c0
    ok = sum(1 for r in results.values() if r.startswith("OK"))
    print("wall_us=%d cpu_us=%d ok=%d failed=%d" % (wall * 1e6, used * 1e6, ok, nodes - ok))


main()
