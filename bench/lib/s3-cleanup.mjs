// Empties and deletes a bench bucket through the project's own object store.
export async function deleteBucketDeep(ctx, bucket) {
  const keys = [];
  for await (const o of ctx.objects.list(bucket, '')) keys.push(o.key);
  for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((k) => ctx.objects.delete(bucket, k)));
  const { DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  await ctx.s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}
