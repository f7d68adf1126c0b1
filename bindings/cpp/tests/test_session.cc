// ko::Options, ko::Session's build and resolve against the real registry and Go fixture, checked
// with skopeo and the ko CLI.
#include "support.hpp"

namespace {

TEST(Api, VersionIsTheInstalledPackages) { EXPECT_EQ(ko::version(), KT_KO_VERSION); }

TEST(Api, OptionsAreValuesAndMessagesNameTheBuilderMethods) {
  ko::Options bad = kt::fixture("UPPER/!!bad", true);
  ko::Options good = bad;  // a copy: changing it leaves `bad` as it was
  good.docker_repo("127.0.0.1:1/good").push(false);
  ko::Error e = kt::expect_error([&] { ko::Session session(bad); }, ko::ErrorCode::InvalidInput,
                                 "ko::Options::docker_repo(): invalid repository \"UPPER/!!bad\"");
  EXPECT_STREQ(e.code_name(), "KO_INVALID_INPUT");
  EXPECT_FALSE(e.exit_code().has_value());
  ko::Session session(good);
  std::vector<ko::Published> built = session.build({"./cmd/second"});
  ASSERT_EQ(built.size(), 1u);
  EXPECT_EQ(built[0].reference.rfind("127.0.0.1:1/good/second-", 0), 0u) << built[0].reference;

  good.unset("docker_repo").env({{"PATH", "/usr/bin:/bin"}}).push(true);
  kt::expect_error([&] { ko::Session s(good); }, ko::ErrorCode::Config, "ko::Options::docker_repo()");
  kt::expect_error([&] { ko::Options().docker_repo("\xff"); }, ko::ErrorCode::InvalidInput, "not UTF-8");
  kt::expect_error([&] { ko::Session s(kt::fixture("a.example/b", false).tags({"v1", "v2"}).tag_only()); },
                   ko::ErrorCode::InvalidInput, "ko::Options::tag_only() needs exactly one tag");
  kt::expect_error([&] { ko::Options().json("{\"dockerrepo\": 1}"); }, ko::ErrorCode::InvalidInput,
                   "unknown field `dockerrepo`");
}

TEST(Api, JsonReplacesEveryOption) {
  ko::Options options = kt::fixture("UPPER/!!bad", true);
  options.json("{\"dockerRepo\": \"127.0.0.1:1/json\", \"push\": false, \"workingDir\": \"" + std::string(kt_app()) +
               "\", \"imageLabels\": {\"team\": \"web\"}}");
  ko::Session session(options);
  EXPECT_EQ(session.build({"./cmd/second"})[0].reference.rfind("127.0.0.1:1/json/second-", 0), 0u);
}

std::string skopeo(const std::string &reference, bool raw, int *status) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--tls-verify=false"};
  if (raw) argv.push_back("--raw");
  argv.push_back("docker://" + reference);
  return kt::run(nullptr, argv, {}, status);
}

TEST(Build, PublishesInArgumentOrderAndSkopeoFindsIt) {
  const std::string repo = kt::repo("cpp-build");
  ko::Session session(kt::fixture(repo, true));
  std::vector<ko::Published> built = session.build({"./cmd/hello", "ko://example.com/app/cmd/second", "./cmd/hello"});
  ASSERT_EQ(built.size(), 3u);
  EXPECT_EQ(built[0].import_path, "example.com/app/cmd/hello");
  EXPECT_EQ(built[1].import_path, "example.com/app/cmd/second");
  EXPECT_EQ(built[0].reference.rfind(repo + "/hello-a60355639e70c972f171c1cc04b2df15@sha256:", 0), 0u);
  EXPECT_EQ(built[2].reference, built[0].reference);
  EXPECT_TRUE(built[0].children.empty());
  for (int i = 0; i < 2; i++) {
    int status = -1;
    std::string inspected = skopeo(built[i].reference, false, &status);
    EXPECT_EQ(status, 0);
    std::string digest = built[i].reference.substr(built[i].reference.find('@') + 1);
    EXPECT_TRUE(kt::contains(inspected, "\"Digest\": \"" + digest + "\"")) << inspected;
  }
}

TEST(Build, LabelsFromAMapLandExactlyInTheConfig) {
  const std::string repo = kt::repo("cpp-labels");
  ko::Session session(kt::fixture(repo, true).image_labels({{"team", "web,api"}, {"note", "a=b"}}));
  ko::Published hello = session.build({"./cmd/hello"})[0];
  int status = -1;
  std::string inspected = skopeo(hello.reference, false, &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(kt::contains(inspected, "\"team\": \"web,api\"")) << inspected;
  EXPECT_TRUE(kt::contains(inspected, "\"note\": \"a=b\"")) << inspected;
}

TEST(Build, ZstdLayersWhenAsked) {
  const std::string repo = kt::repo("cpp-zstd");
  ko::Session session(kt::fixture(repo, true).layer_compression("zstd"));
  ko::Published hello = session.build({"./cmd/hello"})[0];
  int status = -1;
  std::string manifest = skopeo(hello.reference, true, &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(kt::contains(manifest, "application/vnd.oci.image.layer.v1.tar+zstd")) << manifest;
}

TEST(Build, SbomDirHoldsEachImagesSbom) {
  const std::string dir = std::string(kt_tempdir()) + "/cpp-sboms";
  ko::Session session(kt::fixture(kt::repo("cpp-sbom"), true).sbom_dir(dir));
  session.build({"./cmd/hello"});
  char *document = kt_read_file((dir + "/hello-linux-amd64.spdx.json").c_str());
  ASSERT_NE(document, nullptr);
  EXPECT_TRUE(kt::contains(document, "\"spdxVersion\": \"SPDX-2.3\"")) << document;
  free(document);
}

TEST(Build, AnIndexListsItsChildren) {
  const std::string repo = kt::repo("cpp-index");
  ko::Session session(kt::fixture(repo, true).platforms({"linux/amd64", "linux/arm64"}));
  ko::Published second = session.build({"./cmd/second"})[0];
  ASSERT_EQ(second.children.size(), 2u);
  int status = -1;
  std::string index = skopeo(second.reference, true, &status);
  EXPECT_EQ(status, 0);
  for (const std::string &child : second.children) {
    EXPECT_EQ(child.rfind(repo + "/second-", 0), 0u);
    EXPECT_TRUE(kt::contains(index, child.substr(child.find('@') + 1)));
    skopeo(child, true, &status);
    EXPECT_EQ(status, 0) << child;
  }
}

TEST(Resolve, IsByteEqualToTheCli) {
  const std::string repo = kt::repo("cpp-resolve");
  ko::Session session(kt::fixture(repo, true));
  std::string yaml = session.resolve({"config"});
  int status = -1;
  std::string cli = kt::run(kt_app(), {kt_ko_cli(), "resolve", "-f", "config"}, {"KO_DOCKER_REPO=" + repo}, &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(yaml, cli);
  EXPECT_TRUE(kt::contains(yaml, "image: " + repo + "/hello-"));
  EXPECT_TRUE(kt::contains(yaml, "ko://example.com/app/cmd/hello is not replaced inside a block scalar"));
  ko::ResolveOptions recursive;
  recursive.recursive = true;
  std::string deep = session.resolve({"config"}, recursive);
  EXPECT_FALSE(kt::contains(yaml, "name: nested"));
  EXPECT_TRUE(kt::contains(deep, "  name: nested\n"));
}

TEST(Resolve, StringWithSelectorKeepsEveryOtherByte) {
  ko::Session session(kt::fixture("127.0.0.1:1/cpp-string", false));
  const std::string text =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {keep: \"yes\"}}\n"
      "spec:\n  containers:\n  - image: \"ko://example.com/app/cmd/second\"  # quoted\n"
      "---\n"
      "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - image: ko://example.com/app/cmd/hello\n";
  std::string all = session.resolve_string(text);
  EXPECT_TRUE(kt::contains(all, "- image: \"127.0.0.1:1/cpp-string/second-"));
  EXPECT_TRUE(kt::contains(all, "\"  # quoted\n"));
  EXPECT_FALSE(kt::contains(all, "ko://"));
  ko::ResolveOptions selected;
  selected.selector = "keep=yes";
  std::string kept = session.resolve_string(text, selected);
  EXPECT_TRUE(kt::contains(kept, "name: a"));
  EXPECT_FALSE(kt::contains(kept, "name: b"));
  selected.selector = "in in (";
  kt::expect_error([&] { session.resolve_string(text, selected); }, ko::ErrorCode::InvalidInput, "invalid selector");
}

TEST(Session, FinishWritesImageRefsAndClosesTheSession) {
  const std::string refs = std::string(kt_tempdir()) + "/refs.txt";
  ko::Session session(kt::fixture(kt::repo("cpp-refs"), true).image_refs(refs));
  ko::Session moved = std::move(session);
  std::string reference = moved.build({"./cmd/second"})[0].reference;
  moved.finish();
  char *text = kt_read_file(refs.c_str());
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(std::string(text), reference + "\n");
  std::free(text);
  kt::expect_error([&] { moved.build({"./cmd/second"}); }, ko::ErrorCode::InvalidInput, "this ko session has finished");
  moved.finish();
}

}  // namespace
