// SPDX-License-Identifier: Apache-2.0
// HTTP outputs through libcurl: slack, loki, webhook, falcosidekick, otlp.
//
// 2xx: delivered. 400, 409, 422 (OTLP: any status but 429, 502, 503, 504, as its specification
// says): refused, dropped and named in the log. 413: smaller batches. Any other status, or no
// answer (connect error, timeout): kept and retried, honouring Retry-After (seconds or an HTTP
// date, at most retry_max_ms).
#include <curl/curl.h>
#include <fmt/format.h>
#include <zlib.h>

#include <cstring>
#include <ctime>
#include <mutex>

#include "out_sinks.h"
#include "outputs_format.h"
#include "shaudit/record.h"

namespace shaudit::daemon {

namespace {

std::once_flag g_curl_init;

Result<std::string> gzip(std::string_view in) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return make_error("gzip: deflateInit2 failed");
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  size_t n = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return make_error("gzip: deflate did not finish");
  out.resize(n);
  return out;
}

// Retry-After: delta-seconds or an HTTP date; -1 when absent or unreadable.
int64_t parse_retry_after(const std::string& v) {
  if (v.empty()) return -1;
  bool digits = true;
  for (char c : v) digits = digits && c >= '0' && c <= '9';
  if (digits) return v.size() > 7 ? 3600000 : static_cast<int64_t>(std::stoll(v)) * 1000;
  struct tm tm {};
  if (!strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return -1;
  int64_t at = static_cast<int64_t>(timegm(&tm));
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  return at > now ? (at - now) * 1000 : 0;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  std::string_view h(data, size * n);
  auto* retry_after = static_cast<std::string*>(user);
  constexpr std::string_view kName = "retry-after:";
  if (h.size() > kName.size() && strncasecmp(h.data(), kName.data(), kName.size()) == 0) {
    std::string_view v = h.substr(kName.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
      v.remove_suffix(1);
    *retry_after = std::string(v);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() < 4096) body->append(data, std::min<size_t>(size * n, 4096 - body->size()));
  return size * n;
}

// A record that is not an alert, dressed as one for falcosidekick (it takes only Falco's
// event shape): rule "shaudit <type>", the record's fields as output_fields.
json::Object as_falco_alert(const json::Object& rec) {
  json::Object a;
  const std::string* type = json::get_string(rec, "type");
  std::string t = type ? *type : "record";
  a["type"] = record::kAlert;
  a["rule"] = "shaudit " + t;
  auto p = outfmt::record_priority(rec);
  a["priority"] = rules::priority_name(p.value_or(rules::Priority::kDebug));
  if (auto it = rec.find("time"); it != rec.end()) a["time"] = it->second;
  json::Object fields;
  for (const auto& [k, v] : rec) {
    if (k == "type" || k == "time") continue;
    if (v.is_string() || v.is_int())
      fields["shaudit." + k] = v;
    else
      fields["shaudit." + k] = json::encode(v);
  }
  a["output_fields"] = std::move(fields);
  const std::string* text = json::get_string(rec, "text");
  const int64_t* seq = json::get_int(rec, "seq");
  a["output"] = fmt::format("shaudit {} record seq {}{}{}", t, seq ? *seq : 0, text ? ": " : "",
                            text ? *text : "");
  a["tags"] = json::Array{json::Value("shaudit"), json::Value(t)};
  return a;
}

class HttpSink : public Sink {
 public:
  HttpSink(OutputConfig cfg, SinkContext ctx) : cfg_(std::move(cfg)), ctx_(std::move(ctx)) {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
  }
  ~HttpSink() override {
    if (curl_) curl_easy_cleanup(curl_);
  }
  bool ok() const { return curl_ != nullptr; }

  size_t max_batch() const override {
    // Slack and Falco take one message / one event per request.
    return cfg_.type == OutputType::kSlack || cfg_.type == OutputType::kFalcosidekick ? 1
                                                                                      : SIZE_MAX;
  }

  Delivery deliver(const std::vector<OutItem>& batch) override {
    if (batch.empty()) return Delivery::ok();
    std::string body;
    bool gz = false;
    auto line_records = [&] {
      std::vector<outfmt::LineRecord> v;
      for (const auto& it : batch) v.emplace_back(it.line, it.rec);
      return v;
    };
    switch (cfg_.type) {
      case OutputType::kSlack:
        body = outfmt::slack_json(*batch[0].rec, ctx_.hostname);
        break;
      case OutputType::kFalcosidekick: {
        const std::string* t = json::get_string(*batch[0].rec, "type");
        body = t && *t == record::kAlert
                   ? outfmt::falco_json(*batch[0].rec, ctx_.hostname, batch[0].id)
                   : outfmt::falco_json(as_falco_alert(*batch[0].rec), ctx_.hostname,
                                        batch[0].id);  // the record's own id, not the event's
        break;
      }
      case OutputType::kLoki:
        // Every stream carries this host (and job): records themselves name it only in `start`.
        body = outfmt::loki_push_json(line_records(), cfg_.labels, {{"host", ctx_.hostname}});
        gz = cfg_.gzip;
        break;
      case OutputType::kOtlp:
        body = outfmt::otlp_logs_json(line_records(), ctx_.hostname, "shaudit");
        break;
      default: {  // webhook: [{"id": ..., "record": {...}}, ...], records verbatim
        body = "[";
        for (size_t i = 0; i < batch.size(); ++i) {
          if (i) body += ',';
          body += R"({"id":")";
          body += batch[i].id;
          body += R"(","record":)";
          body += batch[i].line;
          body += '}';
        }
        body += ']';
        break;
      }
    }
    if (gz) {
      auto z = gzip(body);
      if (!z) return Delivery::retry(z.message());
      body = std::move(*z);
    }
    return post(body, gz, batch);
  }

 private:
  Delivery post(const std::string& body, bool gz, const std::vector<OutItem>& batch) {
    curl_easy_reset(curl_);
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (gz) headers = curl_slist_append(headers, "Content-Encoding: gzip");
    if (cfg_.type == OutputType::kLoki && !cfg_.tenant.empty())
      headers = curl_slist_append(headers, ("X-Scope-OrgID: " + cfg_.tenant).c_str());
    if (cfg_.type == OutputType::kWebhook) {
      // The ids of the batch, so a receiver can drop a repeated delivery before parsing it.
      std::string ids = "X-Shaudit-Ids: ";
      for (size_t i = 0; i < batch.size() && i < 100; ++i) ids += (i ? "," : "") + batch[i].id;
      headers = curl_slist_append(headers, ids.c_str());
    }
    headers = curl_slist_append(headers, "Expect:");
    for (const auto& [k, v] : cfg_.headers)
      headers = curl_slist_append(headers, (k + ": " + v).c_str());
    std::string retry_after, resp;
    curl_easy_setopt(curl_, CURLOPT_URL, cfg_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg_.timeout_ms));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<uint64_t>(cfg_.timeout_ms, 5000)));
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "shauditd/" SHAUDIT_VERSION);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, cfg_.tls_verify ? 1L : 0L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, cfg_.tls_verify ? 2L : 0L);
    if (!cfg_.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, cfg_.ca_file.c_str());
    if (!cfg_.cert_file.empty()) curl_easy_setopt(curl_, CURLOPT_SSLCERT, cfg_.cert_file.c_str());
    if (!cfg_.key_file.empty()) curl_easy_setopt(curl_, CURLOPT_SSLKEY, cfg_.key_file.c_str());
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &retry_after);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK)
      return Delivery::retry(fmt::format("POST {}: {}", cfg_.url, curl_easy_strerror(rc)));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return Delivery::ok();
    std::string why = fmt::format("POST {}: HTTP {}{}{}", cfg_.url, status,
                                  resp.empty() ? "" : ": ", resp.substr(0, 200));
    // 413: the batch is too big; the output halves its batches (one record too big: dropped).
    if (status == 413) return Delivery::too_large(why, static_cast<int>(status));
    // OTLP/HTTP says which answers may be retried (429, 502, 503, 504); others, 500 included,
    // are refused: dropped and named. The other destinations: 400, 409 and 422 say the payload
    // itself is wrong (malformed, a conflict, unprocessable), so no retry can help and it is
    // dropped and named; every other answer (401, 403 and 407 an expired token, 404 and 410 a
    // moved endpoint, 408, 429, 5xx) is kept spooled and retried with back-off until the
    // receiver or the configuration is fixed.
    int st = static_cast<int>(status);
    bool again = cfg_.type == OutputType::kOtlp ? st == 429 || st == 502 || st == 503 || st == 504
                                                : st != 400 && st != 409 && st != 422;
    if (again) return Delivery::retry(why, parse_retry_after(retry_after), st);
    return Delivery::refused(why, st);
  }

  OutputConfig cfg_;
  SinkContext ctx_;
  CURL* curl_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Sink>> make_http_sink(const OutputConfig& cfg, const SinkContext& ctx) {
  auto s = std::make_unique<HttpSink>(cfg, ctx);
  if (!s->ok()) return make_error(fmt::format("output '{}': curl_easy_init failed", cfg.name));
  return std::unique_ptr<Sink>(std::move(s));
}

}  // namespace shaudit::daemon
