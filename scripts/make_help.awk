# `make help`: the Makefile's targets that carry a "## description", aligned on the longest name.
# A description may name make variables, as in $(OUT); the help target passes each one's value in
# the environment, so the user reads where things go (out/replay), not the variable's name.
BEGIN { FS = ":.*## " }

/^[a-zA-Z_-]+:.*## / {
    count++
    name[count] = $1
    text[count] = expand($2)
    if (length($1) > width) width = length($1)
}

END {
    for (i = 1; i <= count; i++) printf "  \033[36m%s\033[0m  %s\n", pad(name[i], width), text[i]
}

function pad(s, n) { return sprintf("%-" n "s", s) }

# $(NAME) -> the NAME environment variable; one the help target did not pass stays as written.
function expand(s,    out, var) {
    out = ""
    while (match(s, /\$\([A-Za-z_][A-Za-z0-9_]*\)/)) {
        var = substr(s, RSTART + 2, RLENGTH - 3)
        out = out substr(s, 1, RSTART - 1) (var in ENVIRON ? ENVIRON[var] : substr(s, RSTART, RLENGTH))
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}
