#!/bin/sh
# Throwaway TLS material for test_fetch, generated at test time into $1:
#   ca.pem            a test CA (the fetcher trusts it through its ca_file)
#   leaf.pem leaf.key 127.0.0.1 / ::1 / localhost, signed by the CA
#   rogue.pem rogue.key the same names, self-signed (not trusted: a TLS error)
# Keys are P-256 so generation takes milliseconds. Never used outside tests.
set -eu
dir=$1
cd "$dir"
san="subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
cat >ca.cnf <<CNF
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = mcp-proxy-runner fetch test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
cat >leaf.ext <<CNF
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
$san
CNF
cat >rogue.cnf <<CNF
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = 127.0.0.1
[v3]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
$san
CNF
openssl req -x509 -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout ca.key -out ca.pem -days 2 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile leaf.ext -out leaf.pem 2>/dev/null
openssl req -x509 -config rogue.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout rogue.key -out rogue.pem -days 2 2>/dev/null
