# bash completion for ward                                   -*- shell-script -*-
#
# Install: copy to /usr/share/bash-completion/completions/ward (or source it from ~/.bashrc).
# Sandbox and provider names come from the gateway (`ward sandbox list -o json`), asked quietly:
# without a gateway there are simply no names to offer. Works with or without bash-completion.

_ward_commands="run demo doctor policy gateway sandbox logs status provider mcp version help"
_ward_builtin_profiles="anthropic github gitlab npm openai pypi"

# Options that take a value (the next word), for every command.
_ward_takes_value() {
  case $1 in
    -p | --policy | -w | --workdir | --grace | --hosts | --audit | --state-dir | --upstream-ca | \
      --provider | --inference | --provider-profile | --header-timeout | --idle-timeout | \
      --max-connections | --max-buffered-mib | --upstream-idle-ms | --audit-max-mib | -o | --output | --gateway | --label | --env | --max-lifetime | \
      --idle-ttl | --timeout | --tail | --source | --profile | --value | --socket | \
      --socket-group | --listen | --token-file | --tls-cert | --tls-key | --mcp-policy | --mcp-idle-ttl | \
      --mcp-remove-after | --mcp-command-timeout | --mcp-progress-every | --chat | \
      --command-timeout)
      return 0
      ;;
  esac
  return 1
}

# Names of the gateway's sandboxes or providers ($1: sandbox or provider). The JSON is ward's
# own pretty print: each object's "name" sits at six spaces of indentation.
_ward_names() {
  local kind=$1
  "${_ward_exe:-ward}" "$kind" list -o json "${_ward_gateway[@]}" 2>/dev/null </dev/null |
    sed -n 's/^      "name": "\([^"]*\)",\{0,1\}$/\1/p'
}

_ward_reply() { # words to offer (blank-separated), filtered by the current word
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_ward_executables() {
  mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
}

_ward_files() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

_ward_dirs() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -d -- "$cur")
}

_ward_options() { # the options of a command path ("sandbox exec")
  local common="--gateway -o --output -h --help"
  case $1 in
    run)
      echo "-p --policy -w --workdir --grace -v --verbose --hosts --audit --watch --state-dir" \
        "--audit-max-mib --upstream-ca --provider --inference --provider-profile" \
        "--header-timeout --idle-timeout --max-connections --max-buffered-mib" \
        "--upstream-idle-ms -h --help"
      ;;
    demo) echo "-v --verbose -h --help" ;;
    doctor | "policy lint") echo "-o --output -h --help" ;;
    "policy show-default" | policy | sandbox | provider | version | help | "") echo "-h --help" ;;
    "policy get" | "policy list") echo "$common" ;;
    "policy set") echo "--default $common" ;;
    gateway)
      echo "--state-dir --socket --socket-group --stop-sandboxes-on-exit --upstream-ca --hosts" \
        "--listen --token-file --no-auth --tls-cert --tls-key --mcp-policy --mcp-idle-ttl --mcp-remove-after" \
        "--mcp-command-timeout --mcp-progress-every --mcp-fixtures --audit-max-mib" \
        "--header-timeout --idle-timeout --max-connections --max-buffered-mib" \
        "--upstream-idle-ms -v --verbose -h --help"
      ;;
    mcp)
      echo "--gateway --embedded --state-dir --chat --policy --command-timeout --fixtures" \
        "-h --help"
      ;;
    "sandbox create")
      echo "-p --policy -w --workdir --label --env --provider --max-lifetime --idle-ttl $common"
      ;;
    "sandbox list" | "sandbox ls") echo "--label $common" ;;
    "sandbox exec") echo "--env -w --workdir --timeout -n --no-stdin $common" ;;
    "sandbox connect") echo "-w --workdir $common" ;;
    logs) echo "--tail -f --follow --source $common" ;;
    "provider create") echo "--profile --provider-profile --from-existing --value $common" ;;
    *) echo "$common" ;;
  esac
}

_ward() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local _ward_exe=${COMP_WORDS[0]}
  local -a _ward_gateway=() positionals=()
  local cmd="" sub="" dashdash=-1 default_flag="" i word
  COMPREPLY=()

  # The command path, the positionals so far, "--", and --gateway for the name look-ups.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == -- ]]; then
      dashdash=$i
      break
    fi
    case $word in
      --gateway) _ward_gateway=(--gateway "${COMP_WORDS[i + 1]}") ;;
      --gateway=*) _ward_gateway=("$word") ;;
      --default) default_flag=1 ;;
    esac
    if [[ $word == -* ]]; then
      _ward_takes_value "$word" && ((i++))
      continue
    fi
    if [[ -z $cmd ]]; then
      cmd=$word
    elif [[ -z $sub && $cmd =~ ^(policy|sandbox|provider)$ ]]; then
      sub=$word
    else
      positionals+=("$word")
    fi
  done
  local path=$cmd${sub:+ $sub}

  # After "--": the command to run (in the sandbox, named as on this host).
  if ((dashdash > 0)); then
    case $path in
      run | "sandbox create" | "sandbox exec")
        if ((COMP_CWORD == dashdash + 1)); then
          _ward_executables
        else
          _ward_files
        fi
        ;;
    esac
    return 0
  fi

  # The value of an option.
  case $prev in
    -p | --policy | --hosts | --audit | --upstream-ca | --inference | --provider-profile | --gateway | \
      --token-file | --mcp-policy)
      _ward_files
      return 0
      ;;
    -w | --workdir | --state-dir)
      [[ $path == "sandbox exec" || $path == "sandbox connect" ]] || _ward_dirs # a path in the sandbox
      return 0
      ;;
    -o | --output)
      if [[ $path == doctor || $path == "policy lint" ]]; then
        _ward_reply "text json yaml"
      else
        _ward_reply "table json yaml"
      fi
      return 0
      ;;
    --source)
      _ward_reply "audit output all"
      return 0
      ;;
    --provider)
      if [[ $path == run ]]; then
        _ward_reply "$_ward_builtin_profiles"
      else
        _ward_reply "$(_ward_names provider)"
      fi
      return 0
      ;;
    --profile)
      _ward_reply "$_ward_builtin_profiles"
      return 0
      ;;
    --value)
      mapfile -t COMPREPLY < <(compgen -v -- "$cur")
      return 0
      ;;
    --socket-group)
      mapfile -t COMPREPLY < <(compgen -g -- "$cur")
      return 0
      ;;
  esac
  _ward_takes_value "$prev" && return 0

  if [[ $cur == -* ]]; then
    _ward_reply "$(_ward_options "$path")"
    return 0
  fi

  local n=${#positionals[@]}
  case $path in
    "" | help) ((n == 0)) && _ward_reply "$_ward_commands" ;;
    policy) _ward_reply "lint show-default get set list" ;;
    sandbox) _ward_reply "create list ls get exec connect stop start delete rm upload download" ;;
    provider) _ward_reply "create list ls get delete rm" ;;
    "policy lint") _ward_files ;;
    "policy get" | "policy list") ((n == 0)) && _ward_reply "$(_ward_names sandbox)" ;;
    "policy set")
      if [[ -n $default_flag ]] || ((n == 1)); then
        ((n <= 1)) && _ward_files
      elif ((n == 0)); then
        _ward_reply "$(_ward_names sandbox)"
      fi
      ;;
    "sandbox get" | "sandbox stop" | "sandbox start" | "sandbox delete" | "sandbox rm" | logs)
      ((n == 0)) && _ward_reply "$(_ward_names sandbox)"
      ;;
    "sandbox exec" | "sandbox connect")
      if ((n == 0)); then
        _ward_reply "$(_ward_names sandbox)"
      elif ((n == 1)); then
        _ward_executables
      else
        _ward_files
      fi
      ;;
    "sandbox upload")
      if ((n == 0)); then _ward_reply "$(_ward_names sandbox)"; elif ((n == 1)); then _ward_files; fi
      ;;
    "sandbox download")
      if ((n == 0)); then _ward_reply "$(_ward_names sandbox)"; elif ((n == 2)); then _ward_files; fi
      ;;
    "provider create") ((n == 0)) && _ward_reply "$_ward_builtin_profiles" ;;
    "provider get" | "provider delete" | "provider rm")
      ((n == 0)) && _ward_reply "$(_ward_names provider)"
      ;;
    run)
      if ((n == 0)); then
        _ward_executables
      else
        _ward_files
      fi
      ;;
  esac
  return 0
}

complete -F _ward ward
