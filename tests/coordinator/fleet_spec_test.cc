#include "coordinator/fleet_spec.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TEST(FleetSpec, ParsesTheDesignExample) {
  const char* text = R"(groups:
  - id: g0
    nodes:
      - {id: r0, address: "127.0.0.1:6380", store: redis}
      - {id: r1, address: "127.0.0.1:6381", store: redis}
  - id: g1
    nodes:
      - {id: r2, address: "127.0.0.1:6382", store: redis}
indexes:
  - {name: products, shards: 16, rf: 1}
)";
  auto f = ParseFleetSpec(text, "fleet.yaml");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->groups.size(), 2u);
  EXPECT_EQ(f->groups[0].nodes[1].id, "r1");
  EXPECT_EQ(f->indexes[0].shards, 16u);
}

struct Bad {
  const char* text;
  const char* field;
};

TEST(FleetSpec, InvalidFleetsNameTheField) {
  const Bad cases[] = {
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\n      - {id: r0, "
       "address: \"h:2\"}\n",
       "groups[0].nodes[1].id"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\n  - id: g0\n    "
       "nodes:\n      - {id: r1, address: \"h:2\"}\n",
       "groups[1].id"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\nindexes:\n  - {name: "
       "p, shards: 4, rf: 2}\n",
       "indexes[0].rf"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\nindexes:\n  - {name: "
       "p, shards: 0, rf: 1}\n",
       "indexes[0].shards"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\nindexes:\n  - {name: "
       "p, shards: 65537, rf: 1}\n",
       "indexes[0].shards"},
      {"groups:\n  - id: \"\"\n    nodes:\n      - {id: r0, address: \"h:1\"}\n", "groups[0].id"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: \"r 0\", address: \"h:1\"}\n",
       "groups[0].nodes[0].id"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h\"}\n",
       "groups[0].nodes[0].address"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\", store: mongo}\n",
       "groups[0].nodes[0].store"},
      {"groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: \"h:1\"}\nindexes:\n  - {name: "
       "Products, shards: 4}\n",
       "indexes[0].name"},
      {"groups: []\n", "groups"},
      {"grups: []\n", "grups"},
  };
  for (const auto& bc : cases) {
    auto f = ParseFleetSpec(bc.text, "fleet.yaml");
    ASSERT_FALSE(f.ok()) << bc.text;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bc.text;
    EXPECT_NE(f.status().message().find(bc.field), std::string::npos)
        << bc.field << " not in: " << f.status().message();
  }
}

}  // namespace
}  // namespace miroir::coordinator
