// Text → one YAML document, working around yaml-cpp 0.7's failure modes on hostile input.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

#include "policy/reader.h"

namespace ward::policy::detail {
namespace {

// Sees only where each document starts; everything else is ignored.
class DocumentStarts : public YAML::EventHandler {
 public:
  YAML::Mark last;

  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// A YAML stream holds a second document only after a "---" or "..." marker at the start of a
// line; without one, the first document is the only one.
bool may_hold_several_documents(const std::string& text) {
  for (size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, 3, "---") == 0 || text.compare(pos, 3, "...") == 0) return true;
    pos = text.find('\n', pos);
    if (pos == std::string::npos) break;
    ++pos;
  }
  return false;
}

}  // namespace

std::optional<YAML::Node> parse_document(Sink& sink, const std::string& text) {
  try {
    // The common case parses once: a single-document text cannot trip the LoadAll bug below,
    // and YAML::Load reads one document only.
    // Anything but a mapping takes the careful path below, which says precisely what is wrong.
    if (!may_hold_several_documents(text)) {
      YAML::Node doc = YAML::Load(text);
      if (doc.IsMap()) return doc;
    }
    // YAML::LoadAll is not used: on some malformed input (a lone ",") yaml-cpp 0.7's parser reports
    // the same empty document again and again without consuming a token, and LoadAll collects
    // them until memory runs out (jbeder/yaml-cpp#1040, fixed upstream by #1319). Instead, one pass
    // over the events looks at the first two documents only, and notices a parser that does not
    // advance; then YAML::Load builds the first document.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    if (!parser.HandleNextDocument(starts)) {
      sink.add(Diagnostic::Severity::kError, {}, "",
               "the document is empty: a policy needs at least version: 1");
      return std::nullopt;
    }
    YAML::Mark first = starts.last;
    if (parser.HandleNextDocument(starts)) {
      Where at = where_of(starts.last);
      if (starts.last.pos == first.pos) {
        sink.add(Diagnostic::Severity::kError, at, "",
                 "YAML syntax error: the parser cannot make sense of the text here");
      } else {
        sink.add(Diagnostic::Severity::kError, at, "",
                 "the file holds more than one YAML document (separated by ---); a policy is one");
      }
      return std::nullopt;
    }
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    sink.add(Diagnostic::Severity::kError, where_of(e.mark), "",
             "the YAML nests too deeply for the parser; a policy is a few levels deep");
  } catch (const YAML::ParserException& e) {
    // what() repeats the position; msg is the bare reason.
    sink.add(Diagnostic::Severity::kError, where_of(e.mark), "", "YAML syntax error: " + e.msg);
  }
  return std::nullopt;
}

}  // namespace ward::policy::detail
