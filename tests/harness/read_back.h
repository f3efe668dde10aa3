// ReadBack: reads every judged key of a TestWriter's records back through the
// public DataPlane.Get of the workers and compares what a client is told with
// the last acknowledged operation (DESIGN §4 "Reads"): a deleted key must not be
// found, a put must be found with its acknowledged version and body. By default
// the reads carry no after_version token — a reader that is not the writer — so
// the read set and the highest-version rule alone must answer right.
//
// Thread-compatible: call from the test thread.
#ifndef MIROIR_TESTS_HARNESS_READ_BACK_H_
#define MIROIR_TESTS_HARNESS_READ_BACK_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/test_writer.h"

namespace miroir::testing {

struct ReadBackOptions {
  std::vector<std::string> worker_addresses;  // reads rotate over these (HOST:PORT)
  std::string index = "products";
  bool with_token = false;  // pass the key's acknowledged version as after_version
};

struct ReadBackReport {
  uint64_t keys_read = 0;      // keys whose last operation was acknowledged (not unknown)
  uint64_t found_deleted = 0;  // deleted, yet Get found a live document
  uint64_t missing = 0;        // put, yet Get found none
  uint64_t stale = 0;          // put, found at another version or with another body
  uint64_t errors = 0;         // Get did not answer OK
  std::map<std::string, uint64_t> answered_by;  // node named in each OK answer -> count
  std::vector<std::string> failures;            // first failures, one line each (bounded)
  // Reads that answered something other than the acknowledged outcome.
  uint64_t wrong() const { return found_deleted + missing + stale; }
  bool ok() const { return wrong() == 0 && errors == 0; }
  std::string Summary() const;
};

// Reads every key of `records` with an acknowledged, known last operation.
ReadBackReport ReadBack(const std::map<std::string, KeyRecord>& records,
                        const ReadBackOptions& options);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_READ_BACK_H_
