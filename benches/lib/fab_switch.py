"""The switch by fabric: one ThreadingGroup over every host, the same
`ln -s && mv -T` the other peers run.

    fab_switch.py IDENTITY USER TARGET HOSTS      (HOSTS: lines `PORT DIR NAME`)
"""

import sys

from fabric import Connection, ThreadingGroup


def main():
    identity, user, target, listing = sys.argv[1:5]
    with open(listing) as f:
        rows = [line.split() for line in f if line.strip()]
    conns = [
        Connection("127.0.0.1", user=user, port=int(port),
                   connect_kwargs={"key_filename": identity, "look_for_keys": False,
                                   "allow_agent": False})
        for port, _, _ in rows
    ]
    group = ThreadingGroup.from_connections(conns)
    # one command for all hosts, each in its own directory: the group runs
    # the same string everywhere, so the directory comes from the host's port
    cases = " ".join(f"{port}) cd {d} ;;" for port, d, _ in rows)
    cmd = (f'case "${{SSH_CONNECTION##* }}" in {cases} *) exit 3 ;; esac && '
           f"ln -s {target} current.tmp && mv -T current.tmp current")
    group.run(cmd, hide=True)


if __name__ == "__main__":
    main()
