// miroir-ctl: the operator CLI (CLI.md). Everything lives in ctl/*.cc.
#include "ctl/commands.h"

int main(int argc, char** argv) { return miroir::ctl::RunCtl(argc, argv); }
