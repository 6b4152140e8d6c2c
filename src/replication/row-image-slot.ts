/**
 * The hidden slot a MariaDB row's image rides in (mysql-row-images.ts keeps
 * and reads it): a module of its own so that the row decoder, which makes
 * every row with the slot already there (capture/mysql-rows-decoder.ts
 * rowMaker), needs nothing else from mysql-row-images.ts, which needs the
 * decoder's plan type.
 */
import { hiddenSlot } from './hidden-slot.ts';

export const ROW_IMAGE_SLOT = hiddenSlot<object>();
