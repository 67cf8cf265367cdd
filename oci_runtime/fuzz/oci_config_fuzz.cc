// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the config.json edit: any input the scanner takes, edited the way
// prepare_bundle edits (members set and removed on the root object, items appended to an
// array), must come out as JSON the scanner takes again, with the untouched bytes in place.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "json_text.h"

using namespace shaudit::oci;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = scan_json(text);
  if (!doc || !doc->is_object()) return 0;
  // The lookups prepare_bundle makes.
  for (const char* key : {"annotations", "mounts", "process", "root"}) {
    (void)struct_field(*doc, key);
    (void)map_entry(*doc, key);
  }
  JsonEdits e(text);
  std::vector<JsonEdits::MemberChange> changes = {{"shaudit.io/interposer", R"("none")"}};
  if (!doc->members.empty()) changes.push_back({doc->members.front().key, std::nullopt});
  e.update_object(*doc, changes);
  // An array member other than the removed first one gets two items.
  for (size_t i = 1; i < doc->members.size(); ++i) {
    if (!doc->members[i].value.is_array() || doc->members[i].key == doc->members.front().key)
      continue;
    e.append_items(doc->members[i].value, {R"({"destination":"/x"})", "1"});
    break;
  }
  auto out = e.apply();
  if (!out) std::abort();  // these edits never touch the same bytes
  auto again = scan_json(*out);
  if (!again || !again->is_object()) std::abort();
  return 0;
}
