# tinysense: `make train export` builds every model bundle into models/<name>/.
# section: core

# section: kws

# section: listen

# section: camera

# section: firmware
