# Copies one of etcd's .proto files (Debian golang-etcd-server-dev) into the build
# tree without its gogoproto and google.api annotations, which only steer Go code
# and HTTP gateways: the messages and services stay as etcd defines them.
# Usage: cmake -DIN=... -DOUT=... -P strip_gogo.cmake
file(READ ${IN} text)
string(REPLACE "import \"gogoproto/gogo.proto\";" "" text "${text}")
string(REPLACE "import \"google/api/annotations.proto\";" "" text "${text}")
string(REPLACE "\"etcd/mvcc/mvccpb/kv.proto\"" "\"mvccpb/kv.proto\"" text "${text}")
string(REPLACE "\"etcd/auth/authpb/auth.proto\"" "\"authpb/auth.proto\"" text "${text}")
string(REPLACE "\"etcd/etcdserver/etcdserverpb/rpc.proto\"" "\"etcdserverpb/rpc.proto\"" text "${text}")
string(REGEX REPLACE "option \\(gogoproto\\.[a-z_]+\\) = [a-z]+;" "" text "${text}")
string(REGEX REPLACE "option \\(google\\.api\\.http\\) = {([^{}]|{[^{}]*})*};" "" text "${text}")
string(REGEX REPLACE " *\\[\\(gogoproto\\.[^]]*\\]" "" text "${text}")
if(text MATCHES "gogoproto|google\\.api")
  message(FATAL_ERROR "${IN}: annotations left after stripping")
endif()
file(WRITE ${OUT} "${text}")
