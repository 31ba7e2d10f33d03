# bash completion for pidnsctl(1): subcommands, options, namespace types, list columns, and
# shellcheck disable=SC2207  # COMPREPLY=($(compgen ...)): the usual completion idiom; words have no spaces
# namespace arguments (files under /proc/PID/ns and /run/netns, @PID).

_pidnsctl() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n = || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="list translate status tree ps monitor stats dump"
    local global="--address= --system --json= --no-pager --no-legend --verbose --help --version"
    local types="pid user mnt net uts ipc cgroup time"
    local columns="ID INODE TYPE LEVEL PARENT OWNER NPROCS INIT USER CONTAINER COMMAND UNIT SLICE CGROUP MACHINE NETNS"

    # The subcommand, if one was given already.
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            list|translate|status|tree|ps|monitor|stats|dump) cmd=${words[i]}; break ;;
        esac
    done

    case $cur in
        --json=*) COMPREPLY=($(compgen -W "pretty short off" -- "${cur#--json=}")); return ;;
        --address=*) COMPREPLY=($(compgen -W "unix:path=/run/dbus/system_bus_socket" -- "${cur#--address=}")); return ;;
    esac
    case $prev in
        -t|--type) COMPREPLY=($(compgen -W "$types" -- "$cur")); return ;;
        -o|--output)
            local prefix=""
            [[ $cur == *,* ]] && prefix=${cur%,*},
            COMPREPLY=($(compgen -P "$prefix" -W "$columns" -- "${cur##*,}"))
            return ;;
        --from|--to) _pidnsctl_ns; return ;;
        --check) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global" -- "$cur"))
            [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts="$global"
    case $cmd in
        list) opts="$opts -t --type -o --output" ;;
        translate) opts="$opts --from --to --batch" ;;
        tree) opts="$opts --all-types" ;;
        dump) opts="$opts --check" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
        return
    fi
    case $cmd in
        status|translate) COMPREPLY=($(compgen -W "$(cd /proc 2>/dev/null && echo [0-9]*)" -- "$cur")) ;;
        tree|ps|dump) _pidnsctl_ns ;;
    esac
}

# Namespace arguments: @PID, or a namespace file.
_pidnsctl_ns() {
    if [[ $cur == @* ]]; then
        COMPREPLY=($(compgen -P @ -W "$(cd /proc 2>/dev/null && echo [0-9]*)" -- "${cur#@}"))
    elif [[ $cur == /* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
    else
        COMPREPLY=($(compgen -W "@ /proc/ /run/netns/" -- "$cur"))
        compopt -o nospace 2>/dev/null
    fi
}

complete -F _pidnsctl pidnsctl
