#!/bin/bash
# Regenerates one entry of nft-golden.txt: what nft itself sends for a rule.
# A developer's tool (needs root and the nft binary); the tests never run it.
# Usage: golden.sh CHAIN 'RULE' >> nft-golden.txt   (quote " inside RULE as \")
set -euo pipefail
dump=$(mktemp); trap 'rm -f "$dump"' EXIT
printf '%s\t%s\n' "$1" "${2//\\\"/\"}"
unshare -n bash -c "
nft add table inet euca
nft 'add chain inet euca prerouting { type nat hook prerouting priority -100; policy accept; }'
nft 'add chain inet euca postrouting { type nat hook postrouting priority 100; policy accept; }'
nft 'add chain inet euca forward { type filter hook forward priority 0; policy accept; }'
nft 'add chain inet euca guard { type filter hook prerouting priority -150; policy accept; }'
nft 'add chain inet euca host-output { type filter hook output priority 0; policy accept; }'
nft add chain inet euca group-sg-1
nft add chain inet euca inst-i-1
nft add chain inet euca to-instances
nft add chain inet euca out-group-sg-1
nft add chain inet euca out-inst-i-1
nft 'add map inet euca from-instances { type ipv4_addr : verdict; }'
nft 'add map inet euca to-instances { type ipv4_addr : verdict; }'
nft --debug=mnl add rule inet euca $1 $2
" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' > "$dump"
python3 - "$dump" <<'EOF'
import re, sys
msgs, cur = [], None
for l in open(sys.argv[1]).read().split('\n'):
    if '| message length |' in l:
        cur = {'len': int(l.split('|')[1]), 'lines': []}; msgs.append(cur); continue
    if cur is not None: cur['lines'].append(l)
for m in msgs:
    if '02566' not in m['lines'][0]:  # NFT_MSG_NEWRULE
        continue
    out = bytearray()
    for l in m['lines'][4:]:
        l = l.strip()
        if re.match(r'\|\s*[0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2}\s*\|', l):
            out += bytes.fromhex(l.split('|')[1].strip().replace(' ', ''))
        elif (a := re.match(r'\|(\d+)\|(..)\|(\d+)\|', l)):
            ty = int(a.group(3)) | (0x8000 if a.group(2)[0] == 'N' else 0) | (0x4000 if a.group(2)[1] == 'B' else 0)
            out += int(a.group(1)).to_bytes(2, 'little') + ty.to_bytes(2, 'little')
    assert m['len'] == len(out) + 16, (m['len'], len(out))
    print(out.hex())
EOF
