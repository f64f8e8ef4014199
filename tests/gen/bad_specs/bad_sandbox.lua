-- expect: attempt to index a nil value (global 'os')
-- a spec runs in an empty environment: no io, os or require
os.exit(3)
return {}
