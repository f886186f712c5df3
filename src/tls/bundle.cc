#include "tls/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "base/files.h"

namespace ward::tls {
namespace {

bool later(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

}  // namespace

Result<std::string> write_bundle(const Authority& ca, const std::string& state_dir) {
  return write_bundle(ca, state_dir, {kSystemBundles.begin(), kSystemBundles.end()});
}

Result<std::string> write_bundle(const Authority& ca, const std::string& state_dir,
                                 const std::vector<std::string>& system_bundles) {
  std::string dir = state_dir + "/tls";
  std::string path = dir + "/ca-bundle.pem";
  const std::string* system = nullptr;
  struct stat system_st;
  for (const auto& candidate : system_bundles) {
    if (::stat(candidate.c_str(), &system_st) == 0 && S_ISREG(system_st.st_mode)) {
      system = &candidate;
      break;
    }
  }
  auto up_to_date = [&] {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return false;
    if (system && later(system_st.st_mtim, st.st_mtim)) return false;
    return !later(ca.cert_mtime(), st.st_mtim);
  };
  if (up_to_date()) return path;

  auto lock = files::lock(dir);
  if (!lock) return tl::unexpected(lock.error());
  if (up_to_date()) return path;  // another ward wrote it while this one waited for the lock

  std::string content;
  if (system) {
    UniqueFd fd(::open(system->c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("cannot open the system CA bundle " + *system);
    auto text = files::read_all(fd.get(), *system);
    if (!text) return tl::unexpected(text.error());
    content = std::move(*text);
    if (!content.empty() && content.back() != '\n') content += '\n';
  }
  content += "# ward sandbox CA (";
  content += ca.cert_path();
  content += ")\n";
  content += ca.cert_pem();
  if (auto w = files::replace(dir, "ca-bundle.pem", content, 0644); !w)
    return tl::unexpected(w.error());
  return path;
}

}  // namespace ward::tls
