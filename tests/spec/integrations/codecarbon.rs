//! codecarbon: checked against its real reader (being written).
