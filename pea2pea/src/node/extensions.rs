//! Typed per-node state for layers built on the engine (the DSL runtime is one): one value per
//! type, made on first use, so that such a layer needs no field in the user's struct and the
//! engine needs to know nothing about it.

use std::{
    any::{Any, TypeId},
    sync::{Arc, RwLock},
};

/// At most one value of each type. A node holds a handful at most, so a list beats a map.
#[derive(Default)]
pub(crate) struct Extensions(RwLock<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>);

impl Extensions {
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let list = self.0.read().unwrap_or_else(|p| p.into_inner());
        find(&list)
    }

    pub(crate) fn get_or_default<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        if let Some(found) = self.get() {
            return found;
        }
        // made outside the lock: `T::default` is user code, and may itself use extensions
        let made = Arc::new(T::default());
        let mut list = self.0.write().unwrap_or_else(|p| p.into_inner());
        // another caller may have made one meanwhile; the first one stored wins
        if let Some(found) = find(&list) {
            return found;
        }
        list.push((TypeId::of::<T>(), made.clone()));
        made
    }
}

fn find<T: Send + Sync + 'static>(list: &[(TypeId, Arc<dyn Any + Send + Sync>)]) -> Option<Arc<T>> {
    let (_, value) = list.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
    value.clone().downcast().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Default)]
    struct Counter(AtomicU32);

    #[derive(Default)]
    struct Other(u8);

    // EXT-01: one value per type, made once however many threads ask at the same time; a
    // lookup that does not create never makes one.
    #[test]
    fn ext_01_one_value_per_type() {
        let ext = Arc::new(Extensions::default());
        assert!(ext.get::<Counter>().is_none());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let ext = ext.clone();
                std::thread::spawn(move || {
                    ext.get_or_default::<Counter>()
                        .0
                        .fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(ext.get::<Counter>().unwrap().0.load(Ordering::Relaxed), 8);
        assert!(ext.get::<Other>().is_none());
        assert_eq!(ext.get_or_default::<Other>().0, 0);
        assert!(Arc::ptr_eq(
            &ext.get::<Counter>().unwrap(),
            &ext.get_or_default::<Counter>()
        ));
    }
}
