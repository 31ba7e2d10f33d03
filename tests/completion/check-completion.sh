#!/bin/bash
# pidnsctl's bash completion: it parses (bash -n), and in a bash session it completes the
# subcommands pidnsctl --help lists, options, types and columns, each reply relative to
# readline's word as COMP_WORDBREAKS splits it (the tmux tests, tests/dbus/test_completion.cpp,
# run it in real shells with pidnsd's live values). Usage: check-completion.sh FILE PIDNSCTL
set -eu
FILE=$1
PIDNSCTL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
# pidnsctl as a user runs it, by its name: the completion runs the command being completed.
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
ln -s "$PIDNSCTL" "$BIN/pidnsctl"
PATH=$BIN:$PATH
bash -n "$FILE"
# shellcheck source=/dev/null
. "$FILE"
complete -p pidnsctl >/dev/null

fail=0
# complete WORDS...: runs the completion with the cursor on the last word; prints COMPREPLY sorted.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _pidnsctl
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
    local want=$1
    shift
    local got
    got=$(complete_words "$@")
    if [ "$got" != "$want" ]; then
        echo "FAIL: completing '$*': got '$got', want '$want'" >&2
        fail=1
    else
        echo "ok: '$*' -> '$got'"
    fi
}

# The subcommands pidnsctl itself has (from its --help), all offered, and nothing else.
subcommands=$("$PIDNSCTL" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
[ -n "$subcommands" ] || { echo "FAIL: no subcommands in pidnsctl --help" >&2; exit 1; }
expect "$subcommands" pidnsctl ""
expect "list" pidnsctl li
expect "stats status" pidnsctl st
expect "translate tree" pidnsctl --no-pager tr
expect "net" pidnsctl list -t ne
expect "--batch" pidnsctl translate --ba
expect "--all-types" pidnsctl tree --al
expect "--check=" pidnsctl dump --ch
expect "/proc/self/ns/pid /proc/self/ns/pid_for_children" pidnsctl dump /proc/self/ns/pi
expect "ID,INIT ID,INODE" pidnsctl list -o ID,IN
expect "--no-legend --no-pager" pidnsctl --no-
expect "/proc/self/ns/pid /proc/self/ns/pid_for_children" pidnsctl ps /proc/self/ns/pi
expect "--to=" pidnsctl translate 1 --from @1 --t
# What bash replaces is what follows the last COMP_WORDBREAKS character (= and : by default), or
# from @ on (readline keeps @ and $ in the word): the replies start there.
expect "pretty" pidnsctl --json=p
expect "container:" pidnsctl ps cont
expect "unit:" pidnsctl translate 1 --from=u
expect "CONTAINER" pidnsctl list -o CON
expect "CONTAINER,+NETNS" pidnsctl list -o CONTAINER,+NE
# Every option pidnsctl --help shows is offered at the top level.
for opt in $("$PIDNSCTL" --help | sed -n '/^Options:/,/^$/p' | grep -o -- '--[a-z-]*' | sort -u); do
    got=$(complete_words pidnsctl "$opt")
    case " $got " in
        *" $opt "*|*" $opt= "*|*" ${opt#--}= "*|*" ${opt#--} "*) ;;
        *) echo "FAIL: option $opt of pidnsctl --help is not completed (got '$got')" >&2; fail=1 ;;
    esac
done
exit $fail
