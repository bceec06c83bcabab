#include "gitrepo/repo.hpp"

#include "gitrepo/libgit2_util.hpp"

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include <filesystem>
#include <mutex>

namespace ktstr::gitrepo {

namespace detail {

void init_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string git_error_text(int rc) {
  const git_error* e = git_error_last();
  if (e && e->message && *e->message) return e->message;
  return "libgit2 error " + std::to_string(rc);
}

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

}  // namespace detail

using namespace detail;

namespace {

std::string without_trailing_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Result<git_oid> parse_oid(const std::string& hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) != 0)
    return fail("'" + hex + "' is not a full commit id");
  return oid;
}

CommitInfo commit_info(const git_commit* c) {
  CommitInfo info;
  info.id = oid_hex(*git_commit_id(c));
  info.tree = oid_hex(*git_commit_tree_id(c));
  // git_commit_summary takes a non-const commit (it caches the summary).
  const char* summary = git_commit_summary(const_cast<git_commit*>(c));
  info.subject = summary ? summary : "";
  if (const git_signature* a = git_commit_author(c)) {
    info.author = std::string(a->name ? a->name : "") + " <" + (a->email ? a->email : "") + ">";
    info.time = a->when.time;
  }
  for (unsigned i = 0; i < git_commit_parentcount(c); ++i) info.parents.push_back(oid_hex(*git_commit_parent_id(c, i)));
  return info;
}

}  // namespace

Result<std::unique_ptr<Repo>> Repo::open(const std::string& path) {
  init_libgit2();
  const std::string hint = std::filesystem::exists(path)
                               ? "give the path of a git work tree, of a directory inside one, or of a bare repository"
                               : "'" + path + "' does not exist";
  git_repository* raw = nullptr;
  // Flags 0: search upward from `path` like git does, across filesystems no.
  if (int rc = git_repository_open_ext(&raw, path.c_str(), 0, nullptr); rc != 0) {
    if (rc == GIT_ENOTFOUND) return fail("'" + path + "' is not a git repository", hint);
    return fail("cannot open git repository '" + path + "': " + git_error_text(rc), hint);
  }
  const char* top = git_repository_is_bare(raw) ? git_repository_path(raw) : git_repository_workdir(raw);
  return std::unique_ptr<Repo>(new Repo(raw, without_trailing_slash(top ? top : path)));
}

Repo::~Repo() { git_repository_free(repo_); }

Result<std::string> Repo::resolve(const std::string& rev) {
  const std::string hint = "use a commit id, a branch, a tag or any revision `git rev-parse` accepts";
  if (rev.empty()) return fail("unknown revision ''", hint);
  git_object* raw = nullptr;
  if (int rc = git_revparse_single(&raw, repo_, rev.c_str()); rc != 0) {
    if (rc == GIT_EAMBIGUOUS) return fail("short revision '" + rev + "' is ambiguous", "give more hex digits");
    return fail("unknown revision '" + rev + "'", hint);
  }
  ObjectPtr obj(raw);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj.get(), GIT_OBJECT_COMMIT) != 0)
    return fail("revision '" + rev + "' is not a commit", hint);
  ObjectPtr commit(peeled);
  return oid_hex(*git_object_id(commit.get()));
}

Result<bool> Repo::is_ancestor(const std::string& ancestor, const std::string& descendant) {
  auto a = resolve(ancestor);
  if (!a) return fail(a.error());
  auto d = resolve(descendant);
  if (!d) return fail(d.error());
  if (*a == *d) return true;
  auto ao = parse_oid(*a), doid = parse_oid(*d);
  int rc = git_graph_descendant_of(repo_, &*doid, &*ao);
  if (rc < 0)
    return fail("cannot tell whether '" + ancestor + "' is an ancestor of '" + descendant + "': " + git_error_text(rc));
  return rc == 1;
}

Result<CommitInfo> Repo::info(const std::string& commit) {
  auto id = resolve(commit);
  if (!id) return fail(id.error());
  auto oid = parse_oid(*id);
  git_commit* raw = nullptr;
  if (int rc = git_commit_lookup(&raw, repo_, &*oid); rc != 0)
    return fail("cannot read commit '" + commit + "': " + git_error_text(rc));
  CommitPtr c(raw);
  return commit_info(c.get());
}

Result<std::vector<CommitInfo>> Repo::range(const std::string& bad, const std::vector<std::string>& good,
                                            bool first_parent) {
  auto bad_id = resolve(bad);
  if (!bad_id) return fail(bad_id.error());
  std::vector<git_oid> good_oids;
  for (const auto& g : good) {
    auto id = resolve(g);
    if (!id) return fail(id.error());
    good_oids.push_back(*parse_oid(*id));
  }
  const std::string what = "cannot list the commits between '" + bad + "' and its good ends";
  git_revwalk* raw = nullptr;
  if (int rc = git_revwalk_new(&raw, repo_); rc != 0) return fail(what + ": " + git_error_text(rc));
  RevwalkPtr walk(raw);
  if (int rc = git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL); rc != 0)
    return fail(what + ": " + git_error_text(rc));
  if (first_parent) git_revwalk_simplify_first_parent(walk.get());
  git_oid bad_oid = *parse_oid(*bad_id);
  if (int rc = git_revwalk_push(walk.get(), &bad_oid); rc != 0) return fail(what + ": " + git_error_text(rc));
  for (const auto& g : good_oids)
    if (int rc = git_revwalk_hide(walk.get(), &g); rc != 0) return fail(what + ": " + git_error_text(rc));
  std::vector<CommitInfo> out;
  git_oid oid;
  for (;;) {
    int rc = git_revwalk_next(&oid, walk.get());
    if (rc == GIT_ITEROVER) break;
    if (rc != 0) return fail(what + ": " + git_error_text(rc));
    git_commit* c = nullptr;
    if (int lrc = git_commit_lookup(&c, repo_, &oid); lrc != 0) return fail(what + ": " + git_error_text(lrc));
    CommitPtr commit(c);
    out.push_back(commit_info(commit.get()));
  }
  return out;
}

Status Repo::checkout_to(const std::string& commit, const std::string& dir) {
  auto id = resolve(commit);
  if (!id) return fail(id.error());
  auto oid = parse_oid(*id);
  git_commit* raw = nullptr;
  if (int rc = git_commit_lookup(&raw, repo_, &*oid); rc != 0)
    return fail("cannot read commit '" + commit + "': " + git_error_text(rc));
  CommitPtr c(raw);
  git_tree* t = nullptr;
  if (int rc = git_commit_tree(&t, c.get()); rc != 0)
    return fail("cannot read the tree of commit '" + commit + "': " + git_error_text(rc));
  TreePtr tree(t);
  if (auto st = materialise(tree.get(), dir); !st)
    return fail(st.error().context("cannot check out '" + commit + "' into '" + dir + "'"));
  return {};
}

// Objects the revert merge writes (merged blobs, the new trees) go to an
// in-memory backend ahead of the repository's own, so the repository's
// object database stays as it was (and may even be read-only).
Status Repo::use_memory_odb() {
  if (memory_odb_) return {};
  git_odb* raw_odb = nullptr;
  if (int rc = git_repository_odb(&raw_odb, repo_); rc != 0)
    return fail("cannot open the object database: " + git_error_text(rc));
  OdbPtr odb(raw_odb);
  git_odb_backend* mempack = nullptr;
  if (int rc = git_mempack_new(&mempack); rc != 0)
    return fail("cannot create an in-memory object store: " + git_error_text(rc));
  // Highest priority: writes go to the first backend that can write.
  if (int rc = git_odb_add_backend(odb.get(), mempack, 1000); rc != 0) {
    mempack->free(mempack);
    return fail("cannot add an in-memory object store: " + git_error_text(rc));
  }
  memory_odb_ = true;
  return {};
}

Result<std::string> Repo::revert_to(const std::string& commit, const std::string& onto, const std::string& dir) {
  const std::string what = "cannot revert '" + commit + "' on '" + onto + "'";
  auto commit_id = resolve(commit);
  if (!commit_id) return fail(commit_id.error());
  auto onto_id = resolve(onto);
  if (!onto_id) return fail(onto_id.error());
  if (auto st = use_memory_odb(); !st) return fail(st.error().context(what));
  git_commit *rc_raw = nullptr, *ro_raw = nullptr;
  auto coid = *parse_oid(*commit_id), ooid = *parse_oid(*onto_id);
  if (int rc = git_commit_lookup(&rc_raw, repo_, &coid); rc != 0) return fail(what + ": " + git_error_text(rc));
  CommitPtr reverted(rc_raw);
  if (int rc = git_commit_lookup(&ro_raw, repo_, &ooid); rc != 0) return fail(what + ": " + git_error_text(rc));
  CommitPtr base(ro_raw);
  const unsigned mainline = git_commit_parentcount(reverted.get()) > 1 ? 1 : 0;
  if (git_commit_parentcount(reverted.get()) == 0)
    return fail(what + ": it is a root commit", "a root commit cannot be reverted");
  git_merge_options merge_opts = GIT_MERGE_OPTIONS_INIT;
  git_index* raw_index = nullptr;
  if (int rc = git_revert_commit(&raw_index, repo_, reverted.get(), base.get(), mainline, &merge_opts); rc != 0)
    return fail(what + ": " + git_error_text(rc));
  IndexPtr index(raw_index);
  if (git_index_has_conflicts(index.get())) {
    std::vector<std::string> paths;
    git_index_conflict_iterator* it = nullptr;
    if (git_index_conflict_iterator_new(&it, index.get()) == 0) {
      const git_index_entry *ancestor, *ours, *theirs;
      while (git_index_conflict_next(&ancestor, &ours, &theirs, it) == 0) {
        const git_index_entry* e = ours ? ours : theirs ? theirs : ancestor;
        if (e && e->path) paths.emplace_back(e->path);
      }
      git_index_conflict_iterator_free(it);
    }
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
    return fail(what + ": the revert conflicts in " + (list.empty() ? std::string("some paths") : list),
                "the culprit cannot be verified by reverting it on this commit");
  }
  git_oid tree_oid;
  if (int rc = git_index_write_tree_to(&tree_oid, index.get(), repo_); rc != 0)
    return fail(what + ": " + git_error_text(rc));
  git_tree* t = nullptr;
  if (int rc = git_tree_lookup(&t, repo_, &tree_oid); rc != 0) return fail(what + ": " + git_error_text(rc));
  TreePtr tree(t);
  if (auto st = materialise(tree.get(), dir); !st) return fail(st.error().context(what));
  return oid_hex(tree_oid);
}

}  // namespace ktstr::gitrepo
