#!/usr/bin/env python3
# leader_forward.py FLEET_SH PORT_FILE: a loopback TCP forwarder that sends each new
# connection to whichever coordinator leads (`FLEET_SH leader`), for a client that
# takes one coordinator address (the demo writer's final check). Writes its port to
# PORT_FILE; runs until killed. Used by deploy/local/demo.sh and bench/ha_failover.sh.
import os, socket, subprocess, sys, threading
fleet, port_file = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(port_file + ".tmp", port_file)

def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(client):
    try:
        out = subprocess.run(["bash", fleet, "leader"], capture_output=True, text=True, timeout=15)
        leader = out.stdout.split()[1]
        host, port = leader.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=5)
        upstream.settimeout(None)
    except Exception as e:  # no leader now: the client retries
        print("leader-forward: no leader to forward to: %r" % (e,), file=sys.stderr, flush=True)
        client.close()
        return
    print("leader-forward: a connection forwarded to the leader %s" % leader, file=sys.stderr, flush=True)
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
