"""Known public data sets: where each comes from, its checksum and licence, `fetch` and
`load_dataset`.

A data set's file lives at `<data dir>/<dataset.path>`. `fetch` looks for it in
`data_dir` (argument, else $MINIDL_DATA_DIR, else ~/.cache/minidl), then in a
read-only shared-data folder (argument `shared_dir`, else $MINIDL_SHARED_DATA_DIR, else,
when minidl runs from a source checkout, `../shared/data` beside the checkout); it
verifies the checksum of whatever it finds. An embedded data set (`embedded=True`: the
URL sample of `minidl.data.sample`) ships inside the package, in `EMBEDDED_DIR`, and is
always there. Otherwise, when
the file is published as is (`dataset.url`), it downloads it into the data dir: into a
temporary file next to the target, verified, then renamed, so an interrupted or corrupt
download never leaves a file under the final name. Offline, or for a file that is derived
from its sources rather than published, it says where to put the file.

The paths follow the project's shared-data layout (`url-iscx2016/urls.csv`, ...), so
MINIDL_DATA_DIR may point straight at such a folder.

Checksums: sha256 where known; where only a git blob id is published (GitHub shows it,
git computes it as SHA-1 over `blob <size>\\0` + content) that is verified instead.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from minidl.data.tables import load_text_csv

ENV_DATA_DIR = "MINIDL_DATA_DIR"
ENV_SHARED_DIR = "MINIDL_SHARED_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/minidl")
#: Where the embedded data sets' files are: package data, installed with minidl.
EMBEDDED_DIR = Path(__file__).resolve().parent / "files"
#: The shared-data folder beside a source checkout (../shared/data from the repository).
_CHECKOUT = Path(__file__).resolve().parents[2]
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's content is not the registered one (corrupt, truncated or changed)."""


class DatasetNotFound(FileNotFoundError):
    """The file is not on this machine and could not be downloaded."""


@dataclass(frozen=True)
class Source:
    """One file the data set was made from, as published (address pinned to a commit)."""

    url: str
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """A registered data set: one CSV that `minidl.data.load_text_csv` reads.

    path: where the file lives under a data dir; url: its download address when the file
    is published exactly as is (else None: it is derived from `sources`, as its
    provenance note describes); sha256 / git_blob_sha1: of the file at `path` (at least
    one); text_column / label_column: what the loader reads; columns: the whole header;
    embedded: the file ships inside the package (`EMBEDDED_DIR / path`).
    """

    name: str
    path: str
    columns: tuple
    text_column: str
    label_column: str
    licence: str
    description: str
    rows: int
    url: str | None = None
    sha256: str | None = None
    git_blob_sha1: str | None = None
    sources: tuple = ()
    format: str = "CSV, UTF-8, LF line ends, header row"
    embedded: bool = False

    def __post_init__(self):
        if self.sha256 is None and self.git_blob_sha1 is None:
            raise ValueError(f"Dataset {self.name!r}: give sha256 or git_blob_sha1 so downloads can be verified")
        for kind, digest, digits in (("sha256", self.sha256, 64), ("git_blob_sha1", self.git_blob_sha1, 40)):
            if digest is not None and (len(digest) != digits or not _is_hex(digest)):
                raise ValueError(f"Dataset {self.name!r}: {kind} must be {digits} hex digits, got {digest!r}")
        for column in (self.text_column, self.label_column):
            if column not in self.columns:
                raise ValueError(f"Dataset {self.name!r}: column {column!r} is not among {self.columns}")


# ---------------------------------------------------------------------------- checksums
def file_sha256(path):
    """Hex sha256 of a file's bytes."""
    return _digest(path, hashlib.sha256())


def git_blob_sha1(path):
    """The id git gives the file's content: SHA-1 of b'blob <size>\\0' + the bytes."""
    return _digest(path, hashlib.sha1(b"blob %d\0" % os.path.getsize(path)))


def verify(path, dataset):
    """Raise ChecksumError unless the file at `path` has the dataset's checksums."""
    for kind, expected, compute in (
        ("sha256", dataset.sha256, file_sha256),
        ("git blob sha1", dataset.git_blob_sha1, git_blob_sha1),
    ):
        if expected is not None:
            actual = compute(path)
            if actual != expected:
                raise ChecksumError(f"{path}: {kind} is {actual}, expected {expected} for data set {dataset.name!r}")


def _digest(path, hasher):
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _is_hex(text):
    return all(char in "0123456789abcdef" for char in text)


# ------------------------------------------------------------------------------ fetch
def resolve_data_dir(path=None):
    """The data dir: `path`, else $MINIDL_DATA_DIR, else ~/.cache/minidl."""
    return Path(path or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR).expanduser()


def shared_data_dir(path=None):
    """The read-only shared-data folder: `path`, else $MINIDL_SHARED_DATA_DIR, else
    ../shared/data beside the source checkout minidl runs from (None when there is none)."""
    if path or os.environ.get(ENV_SHARED_DIR):
        return Path(path or os.environ[ENV_SHARED_DIR]).expanduser()
    beside = _CHECKOUT.parent / "shared" / "data"
    if (_CHECKOUT / "pyproject.toml").is_file() and beside.is_dir():
        return beside
    return None


def get_dataset(name):
    """The registered Dataset called `name`."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def fetch(dataset, data_dir=None, shared_dir=None, timeout=60):
    """The local path of a data set's verified file, downloading it if need be.

    dataset: a registered name or a Dataset; data_dir / shared_dir: see the module
    docstring. Raises ChecksumError for a file whose content is not the registered one,
    DatasetNotFound when the file is absent and cannot be downloaded.
    """
    if isinstance(dataset, str):
        dataset = get_dataset(dataset)
    if dataset.embedded:
        verify(EMBEDDED_DIR / dataset.path, dataset)
        return EMBEDDED_DIR / dataset.path
    cache = resolve_data_dir(data_dir)
    for folder in (cache, shared_data_dir(shared_dir)):
        if folder is not None and (folder / dataset.path).is_file():
            verify(folder / dataset.path, dataset)
            return folder / dataset.path
    target = cache / dataset.path
    if dataset.url is None:
        raise DatasetNotFound(_where_to_put(dataset, target, "it is not published as is: it is derived from"))
    _download(dataset, target, timeout)
    return target


def load_dataset(dataset, on_error="raise", **fetch_options):
    """(texts, labels, report) of a registered data set (a name or a Dataset), fetched
    as `fetch` does (`fetch_options`: data_dir, shared_dir, timeout) and read with
    `load_text_csv` from its text and 0/1 label columns.

    >>> urls, labels, _ = load_dataset("url-bahnsen-phishing-sample")  # inside the package
    >>> len(urls), int(labels.sum())
    (6152, 2000)
    """
    if isinstance(dataset, str):
        dataset = get_dataset(dataset)
    path = fetch(dataset, **fetch_options)
    return load_text_csv(path, dataset.text_column, dataset.label_column, on_error=on_error)


def _download(dataset, target, timeout):
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary file sits in the target's folder so that the final rename is atomic.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(dataset.url, timeout=timeout) as response:
                    promised = response.headers.get("Content-Length")
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                # http.client reading in chunks ends quietly when a connection drops early
                if promised is not None and out.tell() != int(promised):
                    raise http.client.IncompleteRead(b"", int(promised) - out.tell())
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                if isinstance(error, urllib.error.HTTPError):
                    reason = f"HTTP {error.code} {error.reason}"
                else:  # URLError wraps the socket error (refused, no DNS) as its reason
                    reason = getattr(error, "reason", None) or error
                raise DatasetNotFound(_where_to_put(dataset, target, f"the download failed ({reason}) from")) from error
        try:
            verify(temporary, dataset)
        except ChecksumError as error:
            raise ChecksumError(f"{error}; the download from {dataset.url} was discarded") from None
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _where_to_put(dataset, target, why):
    origins = [dataset.url] if dataset.url else [source.url for source in dataset.sources]
    if len(origins) > 2:
        origins = origins[:2] + [f"{len(origins) - 2} more files"]
    return (
        f"data set {dataset.name!r} is not on this machine and {why} {', '.join(origins)}. "
        f"Put the file at {target} (or set {ENV_DATA_DIR} to a folder holding {dataset.path}, or "
        f"{ENV_SHARED_DIR} to a shared-data folder); it is checked against "
        + ("sha256 " + dataset.sha256 if dataset.sha256 else "git blob sha1 " + dataset.git_blob_sha1)
    )


# --------------------------------------------------------------------------- registry
def _raw_github(repo, ref, path):
    """GitHub's raw-file address of `path` at branch or commit `ref`."""
    return f"https://raw.githubusercontent.com/{repo}/{ref}/{path}"


_INCERTUM = "incertum/cyber-matrix-ai"
_ANDREWAEVA = ("andrewaeva/DGA", "00b49f0606792a64f45f120ac84fbab414272cc9", "dga_wordlists")
_BAHNSEN = Source(
    _raw_github("albahnsen/ML_SecurityInformatics", "801abdd3a672b11ec5677e6b63e24c8ef9e481a3", "datasets/phishing.csv.zip"),
    "274b28f744584a49d5463d10209f2d63934089daccd936205559d1654ed7f3e2",
)
_GRAMBEDDINGS = "fcdalgic/GramBeddings"
_ISCX = ("Rohith-2/url_classification_dl", "d2ea05090097a99fd55b28b7289d396f4c596218", "FinalDataset/URL")

DATASETS = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="url-bahnsen-phishing-sample",
            path="url-bahnsen-phishing-sample.csv.gz",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence="MIT, Copyright (c) 2016 Alejandro Correa Bahnsen (notice in url-bahnsen-phishing-sample.LICENSE)",
            description=(
                "4,000 URLs of url-bahnsen-phishing40k, whole hosts, 2,000 phishing and 2,000 legitimate, "
                "and each legitimate host bare and with '/' (2,152 rows; minidl.data.sample); "
                "ships inside the package and is what `minidl train` trains on without --data"
            ),
            rows=6152,
            sha256="9be51db9c7ca3c9ff99b323d733ecee24eed8391bfc14cb8916d1d0adaad8829",
            sources=(_BAHNSEN,),
            format="gzip-compressed CSV, UTF-8, LF line ends, header url,isMalicious",
            embedded=True,
        ),
        Dataset(
            name="url-incertum-mega",
            path="url-incertum-mega/url_data_mega_deep_learning.csv",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence="none stated (all rights reserved by default)",
            description="The source notebook's data: 194,798 URLs, balanced, scheme and www. removed",
            rows=194798,
            url=_raw_github(_INCERTUM, "master", "Malicious-URL-Detection-Deep-Learning/data/url_data_mega_deep_learning.csv"),
            # no sha256 is published; the git blob id at commit 72f42fbf is
            git_blob_sha1="ebfe4946eb44ca1d0915794455490096887026f1",
            format="CSV, header url,isMalicious",
        ),
        Dataset(
            name="url-incertum-sample",
            path="url-incertum-sample/original/url_data_sample_deep_learning.csv",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence="none stated (all rights reserved by default): a local format fixture only",
            description="400-row sample of the source's data format, benign rows first",
            rows=400,
            url=_raw_github(
                _INCERTUM,
                "72f42fbfa513addb7c566fb29095183874e4c2b2",
                "BigDL-Spark-Malicious-URL-Detection-Deep-Learning/URL-Classification/src/main/resources/"
                "url_data_sample_deep_learning.csv",
            ),
            sha256="4c9204499190a06b9d869916c852ccbeebe6abba7789e00718b262654dc47039",
            format="CSV, header url,isMalicious",
        ),
        Dataset(
            name="url-iscx2016",
            path="url-iscx2016/urls.csv",
            columns=("url", "isMalicious", "type"),
            text_column="url",
            label_column="isMalicious",
            licence="CIC/UNB research data: cite Mamun et al., NSS 2016 (copy repository CC0 1.0)",
            description=(
                "ISCX-URL-2016 benign/spam/phishing/malware URLs, normalised and deduplicated; "
                "the shared copy is a host-split ~80 % subset"
            ),
            rows=46964,
            sha256="7f974ad4130d088bd4e00fb4e63afdd67f15f56756ddb188d7b4d842b8caf6bc",
            sources=tuple(
                Source(_raw_github(_ISCX[0], _ISCX[1], f"{_ISCX[2]}/{name}"), digest)
                for name, digest in (
                    ("Benign_list_big_final.csv", "07cd35b469ad2c1cbe8c4a56c59e76560b6253978e8e625e90286ff0f6bc18b2"),
                    ("Malware_dataset.csv", "1419670dcf8e87ae25f4d3302a5cfd3d3624d32805678a6ef49cb8488572e5d6"),
                    ("phishing_dataset.csv", "070df5f7ab2d9cd9023f6ecac1526b1c3abb33a84e019515e6ee61141c77413e"),
                    ("spam_dataset.csv", "10dae0780e52bea4f88e2af9e21e59db579e6477b946454a942f34870f2e89e7"),
                )
            ),
        ),
        Dataset(
            name="url-bahnsen-phishing40k",
            path="url-bahnsen-phishing40k/urls.csv",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence="MIT, Copyright (c) 2016 Alejandro Correa Bahnsen",
            description=(
                "Phishing vs legitimate URLs, normalised and deduplicated; "
                "the shared copy is a host-split ~80 % subset"
            ),
            rows=31431,
            sha256="73071f7603c04855f9e90add5f8a4dc0b5e49e5bd6960f7ad2a11435f7f497b3",
            sources=(_BAHNSEN,),
        ),
        Dataset(
            name="url-phishstorm",
            path="url-phishstorm/urls.csv",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence=("research use inside this project: copy repository MIT (fcdalgic/GramBeddings), upstream "
                     "zergeborg/fogetti-phish-storm without a licence, PhishTank part CC BY-SA; do not republish"),
            description=(
                "PhishStorm lists: PhishTank phishing URLs (2015-16) against DMOZ directory pages, normalised, "
                "deduplicated; no bare hosts; the shared copy is a host-split ~80 % subset"
            ),
            rows=70438,
            sha256="adf56431ca0418a93eae666dd8afd0ce84d9ab6025850dc6ba16d96d7d6f4038",
            sources=(
                Source(_raw_github(_GRAMBEDDINGS, "222157e1a61a01783383d1632269ad13a7542d96",
                                   "data/PhishStorm/phishing-urls.csv"),
                       "c2218f2d556ad12e59f45852a7d696157478739aba6c62e7ff0d8269904d4d96"),
                Source(_raw_github(_GRAMBEDDINGS, "222157e1a61a01783383d1632269ad13a7542d96",
                                   "data/PhishStorm/valid-urls.csv"),
                       "382453475373d488a4444da95c6fc856c42733150d91ec7bf10809474f57ba08"),
            ),
        ),
        Dataset(
            name="url-hannousse2020",
            path="url-hannousse2020/urls.csv",
            columns=("url", "isMalicious"),
            text_column="url",
            label_column="isMalicious",
            licence=("CC BY 4.0 per its Mendeley Data record (not verified): cite Hannousse & Yahiouche; "
                     "the copy repository has no licence"),
            description=(
                "Hannousse & Yahiouche's 2020 web-page phishing set, URLs only, normalised, deduplicated; "
                "the shared copy is a host-split ~80 % subset"
            ),
            rows=6649,
            sha256="1d710d487f273ad740d9b45efe759ccb5893fd83c79d435750049cb85c0f276c",
            sources=(
                Source(_raw_github("jaaabir/phishing_detection", "48cece4c13cee10c3a3e090509cc890e6ba7c79a",
                                   "FlaskPhish/dataset_phishing.csv"),
                       "21093e2902e5441c86a6daf95e86e7c332046e477fdf109a579d7bd81e586d6c"),
            ),
        ),
        Dataset(
            name="botnet-ctu13-deepseq",
            path="botnet-ctu13-deepseq/ctu13_behaviour.csv",
            columns=("state", "isBotnet", "subclass"),
            text_column="state",
            label_column="isBotnet",
            licence="MIT, Copyright (c) 2020 Harpo MAxx; cite Garcia et al. 2014 for CTU-13",
            description="Stratosphere behavioural letter strings of CTU-13 connections, 41 subclasses",
            rows=9064,
            sha256="95ffc6861eb99849d58e17b3d018b5ce97cf8af47c78255de21c97f1385f25f1",
            sources=(
                Source(
                    _raw_github("harpomaxx/deepseq", "769e3466f90173b663aa1fe3008e7a70295fbdfd", "datasets/ctu13.csv"),
                    "365330a74f800d95f5d55652a5a794b74e5a9baacea6053ccc2ec1368da8d714",
                ),
            ),
        ),
        Dataset(
            name="botnet-slips-rnn",
            path="botnet-slips-rnn/slips_letters.csv",
            columns=("state", "isBotnet", "label", "tuple"),
            text_column="state",
            label_column="isBotnet",
            licence="GPL-2.0 (Stratosphere Laboratory, Slips)",
            description="Stratosphere letter strings of Slips' RNN C&C detector, with labels and 4-tuples",
            rows=7570,
            sha256="8779b8873d0db18dbac23240bc47e4814d93211d7890ee9101296ecbf3b1b8b9",
            sources=(
                Source(
                    _raw_github(
                        "stratosphereips/StratosphereLinuxIPS",
                        "12f4fd20559c11881ff292dca812eece3c4a6fc3",
                        "modules/rnn_cc_detection/datasets/all_datasets_raw.tsv",
                    ),
                    "771b2115bee26a181eaa751868be0275e2789d41048f77108c7e4bbab871480f",
                ),
            ),
        ),
        Dataset(
            name="dga-chrmor-sample",
            path="dga-chrmor-sample/domains.csv",
            columns=("domain", "isDGA", "family"),
            text_column="domain",
            label_column="isDGA",
            licence="research use only, cite Cucchiarelli et al. 2021; do not redistribute",
            description="10,000 domains: real DGA domains of 25 families (360netlab) and Alexa",
            rows=10000,
            sha256="57d0a1072b618c19b1417a27f5fc2b2d98c95d8feaa845f8d81298a2ad32de01",
            sources=(
                Source(
                    _raw_github(
                        "chrmor/DGA_domains_dataset",
                        "9dcc29e5cc644fdfd99d82a3abec993c15bbc7bc",
                        "dga_domains_sample.csv",
                    ),
                    "8e6ed2cce7cf9230c92401748847c3955b53cca355fa568263aadd615e1e1ef1",
                ),
            ),
        ),
        Dataset(
            name="dga-andrewaeva",
            path="dga-andrewaeva/domains.csv",
            columns=("domain", "isDGA", "family"),
            text_column="domain",
            label_column="isDGA",
            licence="GPL-2.0 (andrewaeva/DGA); OpenDNS lists without a stated licence",
            description="DGA domains of 10 re-implemented families and OpenDNS legit domains; 97 % DGA",
            rows=719893,
            sha256="49977f324feeb278e45a5736a7c7580aac84198983424e54070e1d982a3a47d2",
            sources=tuple(
                Source(_raw_github(_ANDREWAEVA[0], _ANDREWAEVA[1], f"{_ANDREWAEVA[2]}/{name}"), digest)
                for name, digest in (
                    ("opendns-top-domains.txt", "65e8d5507b8d9649864a66a0f64e1184889e5c5f2f5ac9dfa0c7f7bcff65e604"),
                    ("opendns-random-domains.txt", "18a6c698a012ca93150c02ccb8f3ba572e53b54d409e289e9b84c1fecd02dd2c"),
                    ("conficker.txt", "77df9523212e6bae2b0d20ba366f66e3ea2e66ee82530352d0cb8655bc44afac"),
                    ("cryptolocker.txt", "e107e9ee81e5bd131c7bc7922749da26957bd08e8cd985f862b2739c23b6acfb"),
                    ("goz.txt", "8aea7d4f8b066c83e90fad8093296a24fc3ac420a8bab3c6ecf620dcee33d729"),
                    ("new_goz.txt", "8b9e7752e30e599ceba57aeecf394f2204e664bcb727b44c0801609e57baff93"),
                    ("matsnu.txt", "60de07bfbfdebc03c814fd1755b7ee8e3bbac0ce8eca7df64e0081e1a48685be"),
                    ("pushdo.txt", "af037bd0365b63971467d4044c0551b1fbcf62cf07a55031ba25c16ed52132e4"),
                    ("ramdo.txt", "9f1ac3f175be2d7e04be9710ea2b0f69118b634c79d6875339919e2e7173c689"),
                    ("rovnix.txt", "4756b2135169167160695aac6a3e6184ac27c1a2ff23077272388ade751ad872"),
                    ("tinba.txt", "8b09018703546d3bba47f31832815e59913749e4d1e9d9b5d3841f91bf50bbc8"),
                    ("zeus.txt", "014132dcc5dc0e0e81378bc3ad82fb34f5dd2fe843f92945c12fb132f483720a"),
                    ("others_dga.txt", "a7b166a40e69e051846a6ed82c2ccb701d2def662a98d298e1c5f95b5069d9aa"),
                    ("dds-malicious-domains.csv", "32ad171b89c62728c6a7ca2b25d7f59cab4021240c9d99806754020cfae25f68"),
                )
            ),
        ),
        Dataset(
            name="domains-alexa100k",
            path="domains-alexa100k/domains.csv",
            columns=("domain", "isDGA", "family", "rank"),
            text_column="domain",
            label_column="isDGA",
            licence="repository MIT (SuperCowPowers); the 2013 Alexa list itself has no stated licence",
            description="Alexa top 100,000 domains of 2013, all legitimate (isDGA=0)",
            rows=100000,
            sha256="f375482c16965ffc635840c4637881a82daf69cc0d571e636bc78c9ed1797719",
            sources=(
                Source(
                    _raw_github(
                        "ClickSecurity/data_hacking",
                        "cc828b5051f935aaafdeae0bc9de06e8f2f687db",
                        "dga_detection/data/alexa_100k.csv",
                    ),
                    "e0b4291ba093e2132df6b192416dbe1bf9bd5f907a35c46b69dadf31ce5142d7",
                ),
            ),
        ),
    )
}
