//! Where the typed map handles of [`super::Counters`], [`super::OverlayMaps`]
//! and [`super::MeshMaps`] come from: a freshly loaded object (maps taken
//! out of it) or the pins of a running data plane. One place names a map
//! in its errors.

use std::path::Path;

use aya::{
    Ebpf,
    maps::{Map, MapData, MapError},
};

use super::DataplaneError;

/// A map error, named after its map.
pub(super) fn map_error(map: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { map, source }
}

/// Where maps are opened from.
#[derive(Debug)]
pub enum MapSource<'a> {
    /// A freshly loaded object: each map is taken out of it.
    Loaded(&'a mut Ebpf),
    /// The directory a running data plane pinned its maps in.
    Pinned(&'a Path),
}

impl MapSource<'_> {
    /// The map `name`, as the typed handle `T`.
    pub(super) fn open<T>(&mut self, name: &'static str) -> Result<T, DataplaneError>
    where
        T: TryFrom<Map, Error = MapError>,
    {
        let map = match self {
            Self::Loaded(ebpf) => ebpf.take_map(name).ok_or_else(|| MapError::InvalidName {
                name: name.to_owned(),
            }),
            Self::Pinned(pin_dir) => {
                MapData::from_pin(pin_dir.join(name)).and_then(Map::from_map_data)
            }
        }
        .map_err(map_error(name))?;
        map.try_into().map_err(map_error(name))
    }
}
