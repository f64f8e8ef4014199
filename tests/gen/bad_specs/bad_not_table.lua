-- expect: must return a table, got number
return 42
