#!/bin/bash
# Postfix and OpenDKIM in the foreground, as the pod runs them (the container's only process
# tree): whichever stops first stops the other and ends the container, so the kubelet restarts
# it; SIGTERM stops both. Postfix logs to stdout (maillog_file in the rendered main.cf).
set -euo pipefail

# Debian's preparation of the chroot the daemons run in (resolv.conf, hosts, the CA directory),
# as its init script does before `postfix start`; the queue volume may be empty.
/usr/lib/postfix/configure-instance.sh -
# A volume provisioner may make the queue's root writable by all, which Postfix warns about.
chmod go-w "$(postconf -hx queue_directory)"
# alias_maps (Debian's default, hash:/etc/aliases) must exist before mail is accepted.
newaliases

opendkim -f -x /etc/opendkim.conf &
dkim=$!
postfix start-fg &
master=$!

stopping=
stop() {
  stopping=1
  postfix stop >/dev/null 2>&1 || kill -TERM "$master" 2>/dev/null || true
  kill -TERM "$dkim" 2>/dev/null || true
}
trap stop TERM INT

status=0
wait -n "$dkim" "$master" || status=$?
if [ -z "$stopping" ]; then
  if kill -0 "$dkim" 2>/dev/null; then
    echo "postfix-entrypoint: Postfix stopped (status $status); stopping OpenDKIM" >&2
  else
    echo "postfix-entrypoint: OpenDKIM stopped (status $status); stopping Postfix" >&2
  fi
  stop
  [ "$status" != 0 ] || status=1
else
  status=0
fi
wait || true
exit "$status"
