/** GraphQL types of verifyJob. */
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { JobStatusEnum } from './job.types.ts';

export enum TableVerifyStatusEnum { EQUAL = 'EQUAL', DIFFERENT = 'DIFFERENT', MISSING_DESTINATION = 'MISSING_DESTINATION', TOO_LARGE = 'TOO_LARGE' }
registerEnumType(TableVerifyStatusEnum, {
  name: 'TableVerifyStatus',
  valuesConfig: {
    EQUAL: { description: 'Every key range holds the same rows on both sides.' },
    DIFFERENT: { description: 'Some key ranges still differed after the re-reads, or the destination lacks columns.' },
    MISSING_DESTINATION: { description: 'The destination table does not exist.' },
    TOO_LARGE: { description: 'No key that orders alike on both engines, and too many rows to compare as one range.' },
  },
});

@InputType({ description: 'What verifyJob compares and how patiently.' })
export class VerifyJobInput {
  @Field(() => [String], { nullable: true, description: '"schema.table" or "table" names among the job\'s tables; all when omitted.' }) tables?: string[];
  @Field(() => Int, { nullable: true, description: 'Rows per key range (default 20000).' }) chunkRows?: number;
  @Field(() => Int, { nullable: true, description: 'Re-reads of a differing range before it is reported (default 3): rows in flight settle.' }) rechecks?: number;
  @Field(() => Int, { nullable: true, description: 'Pause before each re-read, ms (default 1000).' }) recheckDelayMs?: number;
}

@ObjectType({ description: 'One primary-key range that differs between source and destination.' })
export class KeyRangeDiff {
  @Field(() => Int) index!: number;
  @Field(() => String, { nullable: true, description: 'Keys above this (exclusive), JSON array of the key columns; null = from the first key.' }) after?: string;
  @Field(() => String, { nullable: true, description: 'Keys up to this (inclusive); null = to the last key.' }) upTo?: string;
  @Field(() => Int) sourceRows!: number;
  @Field(() => Int) destinationRows!: number;
  @Field(() => String, { description: 'XOR of a 64-bit hash of every key and row (hex).' }) sourceChecksum!: string;
  @Field(() => String) destinationChecksum!: string;
  @Field(() => Int, { description: 'Keys at the source, not at the destination.' }) missing!: number;
  @Field(() => Int, { description: 'Keys at the destination, not at the source.' }) extra!: number;
  @Field(() => Int, { description: 'Keys on both sides with different values.' }) different!: number;
  @Field(() => [String], { description: 'Some of the keys concerned.' }) sampleKeys!: string[];
}

@ObjectType()
export class TableVerification {
  @Field(() => String) schema!: string;
  @Field(() => String) table!: string;
  @Field(() => String) destinationSchema!: string;
  @Field(() => String) destinationTable!: string;
  @Field(() => TableVerifyStatusEnum) status!: TableVerifyStatusEnum;
  @Field(() => Int, { description: 'Key ranges compared.' }) ranges!: number;
  @Field(() => Int) sourceRows!: number;
  @Field(() => Int) destinationRows!: number;
  @Field(() => [String], { description: 'Source columns the destination table lacks.' }) missingColumns!: string[];
  @Field(() => [KeyRangeDiff]) differingRanges!: KeyRangeDiff[];
  @Field(() => Int, { description: 'Ranges that differed at first and were equal on a re-read (rows in flight).' }) settledRanges!: number;
  @Field(() => String, { nullable: true }) message?: string;
}

@ObjectType({ description: 'A comparison of a job\'s destination with its source, taken while the job runs.' })
export class JobVerification {
  @Field(() => ID) jobId!: string;
  @Field(() => JobStatusEnum) jobStatus!: JobStatusEnum;
  @Field(() => Float, { nullable: true, description: 'The job\'s apply lag when the verification started.' }) lagMs?: number | null;
  @Field(() => String) startedAt!: string;
  @Field(() => String) finishedAt!: string;
  @Field(() => Boolean, { description: 'Every table EQUAL.' }) equal!: boolean;
  @Field(() => [TableVerification]) tables!: TableVerification[];
}
