# sd_notify forwarder for core/systemd/notify.ts. Node has no unix datagram sockets, so this small,
# long-lived helper sends each line read from stdin as one datagram to $NOTIFY_SOCKET (a path, or an
# abstract name starting with "@"). Long-lived on purpose: systemd attributes a message by its
# sender's cgroup, which a sender that already exited (a one-shot systemd-notify) may lose.
# Exits when stdin closes (the server exited).
import os
import socket
import sys

addr = os.environ.get("NOTIFY_SOCKET", "")
if addr.startswith("@"):
    addr = "\0" + addr[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for raw in sys.stdin.buffer:
    line = raw.rstrip(b"\n")
    if not line:
        continue
    try:
        sock.sendto(line, addr)
    except OSError as err:
        sys.stderr.write("notify: %s\n" % err)
        sys.stderr.flush()
