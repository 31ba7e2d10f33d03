# bash completion for pidnsctl(1): subcommands, options, namespace types, list columns (a list
# may go on after a comma, +COL and -COL too), namespace forms (@PID, container:, unit:,
# machine:, TYPE:[INODE], files) and live values from pidnsd (pids, namespace ids and inodes,
# container, unit and machine names), all from `pidnsctl __complete`, which zsh's _pidnsctl asks
# too. Works alike with and without the bash-completion package.
#
# What was typed is never changed: bash replaces only the text after the last character of
# COMP_WORDBREAKS (by default it holds @ : and =, so "@123", "--json=p" and "container:x" are
# several words to bash), so the word is taken whole from COMP_LINE, completed whole, and each
# candidate given back from that character on. Candidates are compared as plain strings (never
# through compgen -W, which would expand $(...) in a container's name).

# The words of the command line up to the cursor, dequoted, in _pidnsctl_words; the current one
# as typed (quotes and backslashes kept) in _pidnsctl_raw. A new command after ; | & ( starts over.
_pidnsctl_split() {
    local line=${COMP_LINE:0:COMP_POINT} ch word="" raw="" quote="" started=""
    local i
    _pidnsctl_words=()
    for ((i = 0; i < ${#line}; i++)); do
        ch=${line:i:1}
        if [[ $quote == "'" ]]; then
            raw+=$ch
            if [[ $ch == "'" ]]; then quote=""; else word+=$ch; fi
        elif [[ $quote == '"' ]]; then
            raw+=$ch
            if [[ $ch == '"' ]]; then
                quote=""
            elif [[ $ch == '\' && $((i + 1)) -lt ${#line} ]]; then
                ((i++)); raw+=${line:i:1}; word+=${line:i:1}
            else
                word+=$ch
            fi
        elif [[ $ch == '\' ]]; then
            raw+=$ch
            if ((i + 1 < ${#line})); then ((i++)); raw+=${line:i:1}; word+=${line:i:1}; fi
            started=1
        elif [[ $ch == "'" || $ch == '"' ]]; then
            quote=$ch; raw+=$ch; started=1
        elif [[ $ch == [[:space:]] ]]; then
            [[ -n $started ]] && _pidnsctl_words+=("$word")
            word="" raw="" started=""
        elif [[ $ch == [\;\|\&\(\)] ]]; then
            _pidnsctl_words=() word="" raw="" started=""
        else
            word+=$ch; raw+=$ch; started=1
        fi
    done
    _pidnsctl_words+=("$word")  # the current word, maybe empty
    _pidnsctl_raw=$raw
}

_pidnsctl() {
    local _pidnsctl_words _pidnsctl_raw
    _pidnsctl_split
    local cur=${_pidnsctl_words[${#_pidnsctl_words[@]} - 1]}
    local prog=${_pidnsctl_words[0]}
    [[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
    local out
    out=$("$prog" __complete -- "${_pidnsctl_words[@]:1}" 2>/dev/null) || return 0
    COMPREPLY=()
    local directive=${out%%$'\n'*}
    [[ $out == *$'\n'* ]] && out=${out#*$'\n'} || out=""
    if [[ $directive == :files ]]; then
        local IFS=$'\n'
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return 0
    fi
    # What bash will replace: the text after the last word-break character of the raw word, or
    # from it on when it is @ or $ (readline's special prefixes, kept in the word it replaces).
    local breaks=${COMP_WORDBREAKS//[[:space:]]/} base="" i ch
    for ((i = ${#_pidnsctl_raw} - 1; i >= 0; i--)); do
        ch=${_pidnsctl_raw:i:1}
        if [[ $breaks == *"$ch"* ]]; then
            if [[ $ch == [@\$] ]]; then base=${_pidnsctl_raw:0:i}; else base=${_pidnsctl_raw:0:i+1}; fi
            break
        fi
    done
    # The candidates start with the dequoted word; give back what follows the break, quoted
    # for the shell where it needs to be.
    local line cand rest quoted unsafe
    while IFS= read -r line; do
        cand=${line%%$'\t'*}
        [[ $cand == "$cur"* ]] || continue
        if [[ $_pidnsctl_raw == "$cur" ]]; then
            rest=${cand:${#base}}
        else
            rest=$cand  # quotes in the word: bash replaces it whole
        fi
        unsafe=${rest//[A-Za-z0-9@%+=:,.\/_-]/}
        unsafe=${unsafe//[\[\]]/}
        if [[ -n $unsafe ]]; then printf -v quoted '%q' "$rest"; else quoted=$rest; fi
        COMPREPLY+=("$quoted")
    done <<<"$out"
    [[ $directive == :nospace ]] && compopt -o nospace 2>/dev/null
    return 0
}

complete -F _pidnsctl pidnsctl
