#include "worker/write_validation.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

v1::WriteItem Put(const std::string& pk, const std::string& body, const std::string& index = "i") {
  v1::WriteItem it;
  it.mutable_put()->set_index(index);
  it.mutable_put()->set_pk(pk);
  it.mutable_put()->set_body(body);
  return it;
}

TEST(WriteValidation, AcceptsObjectBodies) {
  EXPECT_TRUE(ValidateWriteItem(Put("k", R"({"a":1,"nested":{"_miroir_x":1}})")).ok());
  EXPECT_TRUE(ValidateWriteItem(Put(std::string(511, 'x'), "{}")).ok());
}

TEST(WriteValidation, RefusesBadItemsNamingTheField) {
  struct Case {
    v1::WriteItem item;
    std::string field;
  };
  std::vector<Case> cases = {
      {Put("", "{}"), "pk:"},
      {Put(std::string(512, 'x'), "{}"), "pk:"},
      {Put("k", "{not json"), "body:"},
      {Put("k", "[1,2]"), "body:"},
      {Put("k", "\"str\""), "body:"},
      {Put("k", R"({"_miroir_ttl":5})"), "body:"},
      {Put("k", R"({"a":[1,{"b":2}],"_miroir_":1})"), "body:"},
      {Put("k", ""), "body:"},
      {Put("k", "{} trailing"), "body:"},
      {Put("k", "[{}]"), "body:"},
      {Put("k", "null"), "body:"},
      {Put("k", "{}", ""), "index:"},
      {v1::WriteItem(), "op:"},
  };
  for (const auto& c : cases) {
    absl::Status s = ValidateWriteItem(c.item);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.item.ShortDebugString();
    EXPECT_EQ(std::string(s.message()).rfind(c.field, 0), 0u) << s.message();
  }
  v1::WriteItem del;
  del.mutable_delete_()->set_index("i");
  EXPECT_EQ(ValidateWriteItem(del).code(), absl::StatusCode::kInvalidArgument);
  del.mutable_delete_()->set_pk("k");
  EXPECT_TRUE(ValidateWriteItem(del).ok());
}

}  // namespace
}  // namespace miroir
