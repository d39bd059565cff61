"""Data: characters -> ids (`text`), labelled CSV files (`tables`), the registry of
public data sets with verified downloads (`registry`), the URL sample that ships inside
the package (`sample`), train/val/test splits (`split`), labelled URLs as the commands
read them (`labelled`), a URL's shape and the rows that take the label out of it
(`shape`), and training mixes of several URL sources (`mix`).
Pure NumPy and the standard library: nothing here needs the autograd engine."""
from minidl.data.registry import (
    DATASETS,
    ChecksumError,
    Dataset,
    DatasetNotFound,
    Source,
    fetch,
    file_sha256,
    get_dataset,
    git_blob_sha1,
    load_dataset,
    resolve_data_dir,
    shared_data_dir,
    verify,
)
from minidl.data.split import normalize_url, split_by_host, split_indices, train_test_split, train_val_test_split, url_host
from minidl.data.tables import LoadReport, MalformedRowError, load_text_csv, load_url_csv
from minidl.data.text import (
    CharTokenizer,
    NgramHasher,
    URLEncoder,
    WordTokenizer,
    fnv1a,
    pad_ragged,
    pad_sequences,
    tokenizer_from_config,
    url_words,
)
from minidl.data.toy import TOY_SETS, make_toy

__all__ = [
    "TOY_SETS", "make_toy",
    "DATASETS", "ChecksumError", "CharTokenizer", "Dataset", "DatasetNotFound", "LoadReport", "MalformedRowError", "NgramHasher",
    "URLEncoder", "WordTokenizer", "fnv1a", "tokenizer_from_config", "url_words",
    "Source", "fetch", "file_sha256", "get_dataset", "git_blob_sha1", "load_text_csv",
    "load_dataset", "load_url_csv", "normalize_url", "pad_ragged", "pad_sequences", "resolve_data_dir",
    "shared_data_dir", "split_by_host",
    "split_indices", "train_test_split", "train_val_test_split", "url_host", "verify",
]
