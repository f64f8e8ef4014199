-- expect: bad_syntax.lua:4:
-- a syntax error is reported with the file and line
return {
    variant = "bad_syntax" "x",
}
