# bash completion for chatstack-status                       -*- shell-script -*-
# Written by hand (the argh parser cannot generate completions); keep it in
# step with the "Command line" section of the SPEC and the man page.
# shellcheck shell=bash

# Service names from the config: the `- name:` items of the YAML, unquoted.
_chatstack_status_services()
{
    local cfg=$1
    [[ -r $cfg ]] || return 0
    sed -n -e 's/^[[:space:]]*-[[:space:]]*name:[[:space:]]*//p' -- "$cfg" 2>/dev/null |
        sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' \
            -e 's/^"\(.*\)"$/\1/' -e "s/^'\\(.*\\)'\$/\\1/"
}

# COMPREPLY = the service names starting with $2, quoted for the shell
# (names may contain spaces: "NeuroSphere SendText").
_chatstack_status_complete_services()
{
    local name prefix=${2//\\/}
    prefix=${prefix#[\"\']}
    COMPREPLY=()
    while IFS= read -r name; do
        [[ -n $name && $name == "$prefix"* ]] && COMPREPLY+=("$(printf '%q' "$name")")
    done < <(_chatstack_status_services "$1")
}

_chatstack_status()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="check run serve status validate mute unmute ping notify-test polkit-rule history incidents report fleet maintenance"

    # Find the subcommand and the config file given so far.
    local i cmd="" cfg=${CHATSTACK_STATUS_CONFIG:-/etc/chatstack-status/monitor.yml}
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -c | --config)
                ((i + 1 < cword)) && cfg=${words[i + 1]}
                ((i++))
                ;;
            --config=*) cfg=${words[i]#--config=} ;;
            -*) ;;
            *) [[ -z $cmd ]] && cmd=${words[i]} ;;
        esac
    done
    cfg=${cfg/#\~/$HOME}

    # Option arguments.
    case $prev in
        -c | --config)
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            compopt -o filenames 2>/dev/null
            return
            ;;
        --format)
            local formats="text json nagios"
            case $cmd in
                status | incidents | fleet | maintenance) formats="text json" ;;
                history) formats="text json csv" ;;
                report) formats="text json markdown" ;;
            esac
            mapfile -t COMPREPLY < <(compgen -W "$formats" -- "$cur")
            return
            ;;
        --since)
            mapfile -t COMPREPLY < <(compgen -W "1h 24h 7d 30d 90d 365d" -- "$cur")
            return
            ;;
        --step)
            mapfile -t COMPREPLY < <(compgen -W "1m 5m 15m 1h 1d" -- "$cur")
            return
            ;;
        --limit)
            mapfile -t COMPREPLY < <(compgen -W "10 50 100 1000" -- "$cur")
            return
            ;;
        --only)
            _chatstack_status_complete_services "$cfg" "$cur"
            return
            ;;
        --listen)
            mapfile -t COMPREPLY < <(compgen -W "127.0.0.1:8095 [::1]:8095 0.0.0.0:8095" -- "$cur")
            return
            ;;
        --for)
            mapfile -t COMPREPLY < <(compgen -W "15m 30m 1h 2h 8h 24h" -- "$cur")
            return
            ;;
        --prometheus)
            mapfile -t COMPREPLY < <(compgen -W "http://127.0.0.1:9090" -- "$cur")
            return
            ;;
        --reason | --message)
            return
            ;;
        --exit-code)
            mapfile -t COMPREPLY < <(compgen -W "0 1" -- "$cur")
            return
            ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "--version --help" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        fi
        return
    fi

    local opts="-c --config --help"
    case $cmd in
        check) opts+=" --no-restart --format --only" ;;
        run) opts+=" --no-restart --listen --no-http" ;;
        serve) opts+=" --listen" ;;
        status) opts+=" --format" ;;
        mute) opts+=" --for --reason" ;;
        ping) opts+=" --fail --exit-code --message" ;;
        history) opts+=" --since --step --format" ;;
        incidents) opts+=" --since --limit --format" ;;
        report) opts+=" --since --format" ;;
        maintenance) opts+=" --format" ;;
        fleet) opts="--prometheus --format --help" ;;
        validate | unmute | notify-test | polkit-rule) ;;
        *) return ;;
    esac

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return
    fi

    # mute/unmute/ping take one SERVICE operand; history/incidents an optional one.
    if [[ $cmd == mute || $cmd == unmute || $cmd == ping || $cmd == history || $cmd == incidents ]]; then
        local operand="" seen_cmd=""
        for ((i = 1; i < cword; i++)); do
            case ${words[i]} in
                -c | --config | --for | --reason | --since | --step | --limit | --format | --exit-code | --message) ((i++)) ;;
                -*) ;;
                *) if [[ -z $seen_cmd ]]; then seen_cmd=1; else operand=${words[i]}; fi ;;
            esac
        done
        [[ -z $operand ]] && _chatstack_status_complete_services "$cfg" "$cur"
    fi
} &&
    complete -F _chatstack_status chatstack-status

# ex: filetype=sh
