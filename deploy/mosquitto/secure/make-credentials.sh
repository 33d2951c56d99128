#!/bin/sh
# Make per-device MQTT credentials for one building: a hashed password file, an ACL file and
# the plain passwords to provision the devices with (credentials.txt, mode 0600: give each
# device its line, then delete or lock the file away).
#
#   make-credentials.sh BUILDING OUTDIR ROLE:ID [ROLE:ID ...]
#
# ROLE is gate, terminal, gateway (reads and writes everything of the building) or viewer
# (reads alerts only, e.g. a desk display). Running it again replaces the three files: new
# passwords for everyone. Then reload the broker: systemctl reload mosquitto (or kill -HUP).
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 BUILDING OUTDIR ROLE:ID [ROLE:ID ...]  (ROLE: gate|terminal|gateway|viewer)" >&2
    exit 2
fi
building=$1
out=$2
shift 2
case $building in
    *[!a-z0-9-]* | "") echo "building id must match [a-z0-9-]{1,32}: $building" >&2; exit 2 ;;
esac

umask 077
mkdir -p "$out"
tmp=$(mktemp -d "$out/.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/passwords"
: > "$tmp/credentials.txt"
{
    echo "# Mosquitto ACL for building $building, made by make-credentials.sh: do not edit by hand."
    echo "# Anything not granted here is denied."
} > "$tmp/acl"

for spec in "$@"; do
    role=${spec%%:*}
    id=${spec#*:}
    case $id in
        *[!a-z0-9-]* | "") echo "device id must match [a-z0-9-]{1,32}: $spec" >&2; exit 2 ;;
    esac
    password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    mosquitto_passwd -b "$tmp/passwords" "$id" "$password"
    echo "$id:$password" >> "$tmp/credentials.txt"
    {
        echo
        echo "user $id"
        case $role in
            gate | terminal)
                echo "topic write campus/$building/$role/$id/#"
                echo "topic read campus/$building/$role/$id/cmd/#"
                ;;
            gateway)
                echo "topic readwrite campus/$building/#"
                ;;
            viewer)
                echo "topic read campus/$building/alerts/#"
                ;;
            *)
                echo "unknown role in $spec (gate|terminal|gateway|viewer)" >&2
                exit 2
                ;;
        esac
    } >> "$tmp/acl"
done

chmod 0640 "$tmp/passwords" "$tmp/acl"
chmod 0600 "$tmp/credentials.txt"
# The broker drops root for its own user: let its group read the password and ACL files.
if getent group mosquitto > /dev/null 2>&1; then
    chgrp mosquitto "$tmp/passwords" "$tmp/acl"
    chgrp mosquitto "$out" && chmod 0750 "$out"
fi
mv "$tmp/passwords" "$tmp/acl" "$tmp/credentials.txt" "$out/"
echo "wrote $out/passwords, $out/acl and $out/credentials.txt for $# clients" >&2
