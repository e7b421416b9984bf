# bash completion of vigilctl: its verbs, and the units of the running vigil (asked with
# `vigilctl list`, so the socket of the command line or $VIGIL_SOCKET is the one asked).
# Needs nothing of the bash-completion package but its loader.

_vigilctl_units() {
    local sock=()
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) sock=(--socket "${COMP_WORDS[i + 1]}") ;;
            --socket=*) sock=("${COMP_WORDS[i]}") ;;
        esac
    done
    vigilctl "${sock[@]}" --no-pager list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_vigilctl() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local verbs="list status start stop restart reload logs check convert tree dump
                 analyze poweroff reboot halt version"
    local verb="" arg_index=0 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --socket) ((i++)) ;;
            -*) ;;
            *) if [[ -z $verb ]]; then verb=${COMP_WORDS[i]}; else ((arg_index++)); fi ;;
        esac
    done
    if [[ ${COMP_WORDS[COMP_CWORD - 1]} == --socket ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--json --no-pager --socket --help" -- "$cur"))
        return
    fi
    case $verb in
        "")
            COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
        status|start|stop|restart|reload)
            COMPREPLY=($(compgen -W "$(_vigilctl_units)" -- "$cur")) ;;
        logs)
            if ((arg_index == 0)); then
                COMPREPLY=($(compgen -W "$(_vigilctl_units)" -- "$cur"))
            fi ;;
        analyze)
            if ((arg_index == 0)); then
                COMPREPLY=($(compgen -W "blame critical-chain plot" -- "$cur"))
            elif ((arg_index == 1)) && [[ ${COMP_WORDS[COMP_CWORD - 1]} == critical-chain ]]; then
                COMPREPLY=($(compgen -W "$(_vigilctl_units)" -- "$cur"))
            fi ;;
        check|convert)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}

complete -F _vigilctl vigilctl
