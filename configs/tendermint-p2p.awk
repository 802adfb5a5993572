# Merges `sentrymesh export tendermint` into a CometBFT (Tendermint)
# config.toml: each key the export sets replaces the same key of the [p2p]
# section, and everything else is kept as it is (README.md, "The chain
# node's peer config"):
#   awk -f tendermint-p2p.awk EXPORT config.toml > config.toml.new
# Every key the export writes is in the [p2p] section of the config.toml
# that `init` writes.
FNR == NR {
    if ($1 !~ /^#/ && NF > 0) line[$1] = $0
    next
}
/^[ \t]*\[/ {
    section = $1
}
section == "[p2p]" && ($1 in line) {
    print line[$1]
    next
}
{
    print
}
