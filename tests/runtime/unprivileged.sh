# tests/runtime/unprivileged.sh — sourced by tests that check what happens when a file cannot be read or a
# folder cannot be written. CI runs as root, and root reads and writes through any mode bits, so such a
# test passes there without checking anything; these helpers run the command as an unprivileged user instead.
#
#   unprivileged_setup          sets UNPRIVILEGED_NOT_RUN to why the commands cannot run unprivileged here
#                               ("" when they can); to be called once
#   as_unprivileged CMD...      runs CMD without privileges: as the caller when it is not root, else as nobody
#                               (setpriv, or runuser where setpriv is missing) with no supplementary groups
#   unprivileged_probe DIR      whether a file in DIR with mode 000 is unreadable to as_unprivileged (the
#                               proof that the mode bits bite; DIR must be reachable by that user)
#
# Files the command needs must be reachable by that user: a folder from mktemp -d is mode 700, so give it
# chmod 755 (and 777 where the command writes).
UNPRIVILEGED_NOT_RUN=""
UNPRIVILEGED_CMD=()

unprivileged_setup() {
    UNPRIVILEGED_CMD=()
    UNPRIVILEGED_NOT_RUN=""
    if [ "$(id -u)" != 0 ]; then
        return 0
    fi
    local uid gid
    if ! uid=$(id -u nobody 2>/dev/null) || ! gid=$(id -g nobody 2>/dev/null); then
        UNPRIVILEGED_NOT_RUN="running as root and there is no user 'nobody' to drop to"
        return 0
    fi
    if command -v setpriv > /dev/null && setpriv --reuid="$uid" --regid="$gid" --clear-groups true 2> /dev/null; then
        UNPRIVILEGED_CMD=(setpriv --reuid="$uid" --regid="$gid" --clear-groups --)
    elif command -v runuser > /dev/null && runuser -u nobody -- true 2> /dev/null; then
        UNPRIVILEGED_CMD=(runuser -u nobody --)
    else
        UNPRIVILEGED_NOT_RUN="running as root and neither setpriv nor runuser can switch to 'nobody' (util-linux)"
    fi
}

as_unprivileged() {
    "${UNPRIVILEGED_CMD[@]}" "$@"
}

unprivileged_probe() {
    local f=$1/.unprivileged_probe
    echo x > "$f" && chmod 000 "$f"
    local readable=0
    as_unprivileged cat "$f" > /dev/null 2>&1 && readable=1
    rm -f "$f"
    [ "$readable" = 0 ]
}
