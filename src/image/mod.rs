//! Guest images: the axvisor-guest registry, verified downloads and the content-addressed cache.
